/*
 * swapinfo.c - a small swapinfo(8) (pstat -s) for crash dumps, written only against <kvm.h>.
 *
 *   swapinfo [-M core] [-N namelist]
 *
 * As BSD's pstat: kvm_openfiles, then kvm_getswapinfo(kd, rows, 16, SWIF_DEV_PREFIX), and the
 * table in 1K blocks:
 *
 *   Device          1K-blocks     Used    Avail Capacity
 *   /dev/vda            65532      268    65264     0%
 *   Total               65532      268    65264     0%
 *
 * The Total line is always printed (BSD prints it only for more than one device).
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>

#define MAXSWAP 16

static void usage(void)
{
	fprintf(stderr, "usage: swapinfo [-M core] [-N namelist]\n");
	exit(2);
}

static void row(const char *name, unsigned long long total_pages, unsigned long long used_pages, long page_kib)
{
	unsigned long long total = total_pages * (unsigned long long)page_kib;
	unsigned long long used = used_pages * (unsigned long long)page_kib;
	double capacity = total_pages == 0 ? 0.0 : (double)used_pages / (double)total_pages * 100.0;
	printf("%-15s %9llu %8llu %8llu %7.0f%%\n", name, total, used, total - used, capacity);
}

int main(int argc, char **argv)
{
	const char *core = NULL, *namelist = NULL;
	int c;
	while ((c = getopt(argc, argv, "M:N:")) != -1) {
		switch (c) {
		case 'M': core = optarg; break;
		case 'N': namelist = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	char errbuf[_POSIX2_LINE_MAX];
	kvm_t *kd = kvm_openfiles(namelist, core, NULL, O_RDONLY, errbuf);
	if (kd == NULL) {
		fprintf(stderr, "swapinfo: %s\n", errbuf);
		return 1;
	}

	struct kvm_swap rows[MAXSWAP];
	int n = kvm_getswapinfo(kd, rows, MAXSWAP, SWIF_DEV_PREFIX);
	if (n < 0) {
		fprintf(stderr, "swapinfo: kvm_getswapinfo: %s\n", kvm_geterr(kd));
		kvm_close(kd);
		return 1;
	}

	long page_kib = sysconf(_SC_PAGESIZE) / 1024;
	printf("%-15s %9s %8s %8s %8s\n", "Device", "1K-blocks", "Used", "Avail", "Capacity");
	for (int i = 0; i < n; i++)
		row(rows[i].ksw_devname, rows[i].ksw_total, rows[i].ksw_used, page_kib);
	row("Total", rows[n].ksw_total, rows[n].ksw_used, page_kib);

	int status = fflush(stdout) == 0 ? 0 : 1;
	kvm_close(kd);
	return status;
}
