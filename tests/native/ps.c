/*
 * ps.c - a small ps(1) for crash dumps, written only against <kvm.h>, as BSD's ps uses libkvm:
 * kvm_openfiles, kvm_getprocs(KERN_PROC_PROC) and kvm_getargv.
 *
 *   ps [-M core] [-N namelist] [-S swap]
 *
 * Without -M it reads the running kernel (/proc/kcore, root only). One line per process:
 *
 *     PID  PPID   UID  RUID STAT STARTED COMMAND ARGS
 *
 * STAT is BSD's state letter (R, S, D, T, Z, ...) followed by N (positive nice), < (negative nice)
 * and s (session leader). STARTED is the wall-clock start time, seconds.microseconds since the
 * epoch (ki_start). COMMAND is ki_comm. ARGS are the arguments separated by one space; when there
 * are none, a kernel thread shows [comm], and a process whose arguments cannot be read shows
 * (comm), with the reason on stderr. COMMAND and each argument are printed as strvis(3) with
 * VIS_OCTAL | VIS_WHITE would: bytes outside '!'..'~', and the backslash, as \ooo; so the columns
 * never contain a space and the arguments can be split back exactly.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>

static void put_vis(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p > ' ' && *p < 0x7f && *p != '\\')
			putchar(*p);
		else
			printf("\\%03o", *p);
	}
}

static char state(const struct kinfo_proc *kp)
{
	switch (kp->ki_stat) {
	case SRUN:
	case SIDL:
		return 'R';
	case SSLEEP:
		return (kp->ki_tdflags & TDF_SINTR) ? 'S' : 'D';
	case SSTOP:
		return 'T';
	case SZOMB:
		return 'Z';
	case SWAIT:
		return 'W';
	case SLOCK:
		return 'L';
	default:
		return '?';
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: ps [-M core] [-N namelist] [-S swap]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *core = NULL, *namelist = NULL, *swap = NULL;
	int c;
	while ((c = getopt(argc, argv, "M:N:S:")) != -1) {
		switch (c) {
		case 'M': core = optarg; break;
		case 'N': namelist = optarg; break;
		case 'S': swap = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	char errbuf[_POSIX2_LINE_MAX];
	kvm_t *kd = kvm_openfiles(namelist, core, swap, O_RDONLY, errbuf);
	if (kd == NULL) {
		fprintf(stderr, "ps: %s\n", errbuf);
		return 1;
	}

	int n = 0;
	struct kinfo_proc *procs = kvm_getprocs(kd, KERN_PROC_PROC, 0, &n);
	if (procs == NULL && errno != ESRCH) {
		fprintf(stderr, "ps: kvm_getprocs: %s\n", kvm_geterr(kd));
		kvm_close(kd);
		return 1;
	}

	printf("%5s %5s %5s %5s %-4s %s %s %s\n", "PID", "PPID", "UID", "RUID", "STAT", "STARTED", "COMMAND", "ARGS");
	int status = 0;
	for (int i = 0; i < n; i++) {
		const struct kinfo_proc *kp = &procs[i];
		char stat[8];
		int k = 0;
		stat[k++] = state(kp);
		if (kp->ki_nice > 0)
			stat[k++] = 'N';
		else if (kp->ki_nice < 0)
			stat[k++] = '<';
		if (kp->ki_kiflag & KI_SLEADER)
			stat[k++] = 's';
		stat[k] = '\0';

		printf("%5d %5d %5u %5u %-4s %lld.%06ld ", (int)kp->ki_pid, (int)kp->ki_ppid, (unsigned)kp->ki_uid, (unsigned)kp->ki_ruid, stat,
		       (long long)kp->ki_start.tv_sec, (long)kp->ki_start.tv_usec);
		put_vis(kp->ki_comm);
		putchar(' ');

		char **args = kvm_getargv(kd, kp, 0);
		if (args != NULL && args[0] != NULL) {
			for (char **a = args; *a != NULL; a++) {
				if (a != args)
					putchar(' ');
				put_vis(*a);
			}
		} else if (kp->ki_flag & P_KPROC) {
			putchar('[');
			put_vis(kp->ki_comm);
			putchar(']');
		} else {
			putchar('(');
			put_vis(kp->ki_comm);
			putchar(')');
			fprintf(stderr, "ps: pid %d: no arguments: %s\n", (int)kp->ki_pid, kvm_geterr(kd));
		}
		putchar('\n');
	}
	if (fflush(stdout) != 0)
		status = 1;
	kvm_close(kd);
	return status;
}
