/*
 * dmesg.c - a small dmesg(8) for crash dumps, written only against <kvm.h>.
 *
 *   dmesg [-M core] [-N namelist] [-b]
 *
 * Opens the image SunOS-style, as BSD's dmesg does (kvm_open with errstr "dmesg": errors print as
 * "dmesg: message"). BSD's dmesg reads the message buffer with kvm_nlist + kvm_read; Linux's log
 * is a lockless ring of records, so the log comes from kvm_linux_dmesg. With -b the kernel's
 * banner comes first, read the BSD way: kvm_nlist("linux_banner") and kvm_read of the string.
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>

static void usage(void)
{
	fprintf(stderr, "usage: dmesg [-M core] [-N namelist] [-b]\n");
	exit(2);
}

/* Prints the NUL-terminated string at kernel address addr, reading it a piece at a time. */
static int print_kernel_string(kvm_t *kd, unsigned long addr)
{
	char chunk[256];
	size_t total = 0;
	for (;;) {
		/* Never read across a page boundary: the string's end may be the end of a mapping. */
		size_t room = 4096 - ((addr + total) & 4095);
		size_t want = room < sizeof(chunk) ? room : sizeof(chunk);
		ssize_t n = kvm_read(kd, addr + total, chunk, want);
		if (n <= 0) {
			fprintf(stderr, "dmesg: kvm_read at 0x%lx: %s\n", addr + total, kvm_geterr(kd));
			return -1;
		}
		size_t len = strnlen(chunk, (size_t)n);
		fwrite(chunk, 1, len, stdout);
		total += len;
		if (len < (size_t)n)
			return 0;
		if (total > 65536) {
			fprintf(stderr, "dmesg: linux_banner is not terminated\n");
			return -1;
		}
	}
}

int main(int argc, char **argv)
{
	const char *core = NULL, *namelist = NULL;
	int banner = 0, c;
	while ((c = getopt(argc, argv, "M:N:b")) != -1) {
		switch (c) {
		case 'M': core = optarg; break;
		case 'N': namelist = optarg; break;
		case 'b': banner = 1; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	kvm_t *kd = kvm_open(namelist, core, NULL, O_RDONLY, "dmesg");
	if (kd == NULL)
		return 1; /* kvm_open printed "dmesg: why" */

	if (banner) {
		struct nlist nl[2];
		memset(nl, 0, sizeof(nl));
		nl[0].n_name = "linux_banner";
		if (kvm_nlist(kd, nl) != 0 || nl[0].n_type == N_UNDF) {
			fprintf(stderr, "dmesg: linux_banner not found\n");
			kvm_close(kd);
			return 1;
		}
		if (print_kernel_string(kd, nl[0].n_value) != 0) {
			kvm_close(kd);
			return 1;
		}
	}

	size_t len = 0;
	const char *log = kvm_linux_dmesg(kd, &len);
	if (log == NULL) {
		fprintf(stderr, "dmesg: kvm_linux_dmesg: %s\n", kvm_geterr(kd));
		kvm_close(kd);
		return 1;
	}
	if (len > 0 && log[len - 1] != '\n') {
		fprintf(stderr, "dmesg: the log does not end with a newline\n");
		kvm_close(kd);
		return 1;
	}
	fwrite(log, 1, len, stdout);
	int status = fflush(stdout) == 0 ? 0 : 1;
	kvm_close(kd);
	return status;
}
