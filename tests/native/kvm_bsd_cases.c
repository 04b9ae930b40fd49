/*
 * kvm_bsd_cases.c - the 13 cases of FreeBSD's lib/libkvm/tests (kvm_close_test, kvm_geterr_test,
 * kvm_open_test, kvm_open2_test, kvm_read_test), written afresh for libkvm.so on Linux.
 *
 *   kvm_bsd_cases -M core [-N namelist] -E expect
 *
 * FreeBSD runs cases 3, 4 and 13 on its live kernel; here they run on the crash dump given with -M,
 * opened O_RDONLY, and compare with the guest's truth (the -E file):
 *   - case 3: kvm_write on a descriptor opened O_RDONLY fails and leaves an error text;
 *   - case 4: FreeBSD injects the error with the internal _kvm_err(); kvm.h has no such call, so a
 *     failing kvm_read of an unmapped address leaves the text, and a later successful kvm_nlist +
 *     kvm_read must not clear or change it;
 *   - cases 4 and 13: FreeBSD reads the int mp_maxcpus and compares it with sysctl
 *     kern.smp.maxcpus. The Linux counterpart is the unsigned int nr_cpu_ids (the number of
 *     possible CPU ids), which the kernel sets from the firmware's CPU list at boot: the lab's
 *     guest is QEMU with -smp N and no extra hot-pluggable CPUs, so nr_cpu_ids == N, the "cpus"
 *     line of the expectation file (manifest.json qemu.smp).
 * Open error texts are ours (kvm.h's implementation, not FreeBSD's): the cases check that a text
 * is there, and its exact words only where ours and FreeBSD's agree ("<file>: No such file or
 * directory").
 */
#include "ktest.h"

static char errbuf[_POSIX2_LINE_MAX];
static char textfile[64];
static const char *progname = "kvm_bsd_cases";

static void errbuf_clear(void)
{
	errbuf[0] = '\0';
}

static int errbuf_has_error(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* Case 1: kvm_close(NULL) returns -1 with errno EINVAL. */
static void case_close_null(void)
{
	errno = 0;
	int r = kvm_close(NULL);
	check(r == -1 && errno == EINVAL, "case 1 kvm_close(NULL) fails with EINVAL", "returned %d, errno %d", r, errno);
}

/* Case 2: kvm_geterr(NULL) is an empty string, not NULL. */
static void case_geterr_null(void)
{
	char *s = kvm_geterr(NULL);
	check(s != NULL && !errbuf_has_error(s), "case 2 kvm_geterr(NULL) is \"\"", "returned %s%s%s", s ? "\"" : "", s ? s : "NULL", s ? "\"" : "");
}

/* Case 3: on a read-only descriptor kvm_write fails and kvm_geterr has a text; kvm_close succeeds. */
static void case_geterr_error(void)
{
	errbuf_clear();
	kvm_t *kd = kvm_open2(opt_namelist, opt_core, O_RDONLY, errbuf, NULL);
	if (!check(kd != NULL, "case 3 kvm_open2 of the dump O_RDONLY", "NULL: %s", errbuf))
		return;
	check(!errbuf_has_error(errbuf), "case 3 a successful kvm_open2 leaves errbuf empty", "errbuf \"%s\"", errbuf);

	/* FreeBSD's call, as written: a zero-length write of NULL at address 0. */
	ssize_t w = kvm_write(kd, 0, NULL, 0);
	check(w == -1, "case 3 kvm_write(kd, 0, NULL, 0) on an O_RDONLY dump returns -1", "returned %zd", w);
	check(errbuf_has_error(kvm_geterr(kd)), "case 3 kvm_geterr after the failed kvm_write is not empty", "kvm_geterr is \"\"");

	/* The same with bytes to write, at a mapped address (the kernel's nr_cpu_ids). */
	kvm_close(kd);
	kd = kvm_open2(opt_namelist, opt_core, O_RDONLY, errbuf, NULL);
	if (kd == NULL)
		return;
	unsigned int value = 0;
	unsigned long addr = sym(kd, "nr_cpu_ids");
	ssize_t r = kvm_read(kd, addr, &value, sizeof(value));
	w = kvm_write(kd, addr, &value, sizeof(value));
	check(r == (ssize_t)sizeof(value) && w == -1, "case 3 kvm_write of 4 bytes to a mapped address on an O_RDONLY dump returns -1",
	      "kvm_read returned %zd, kvm_write %zd", r, w);
	check(errbuf_has_error(kvm_geterr(kd)), "case 3 kvm_geterr after the failed 4-byte kvm_write is not empty", "kvm_geterr is \"\"");
	int c = kvm_close(kd);
	check(c == 0, "case 3 kvm_close returns 0", "returned %d (errno %d)", c, errno);
}

/* Case 4: an error text survives later successful calls (kvm_nlist, kvm_read). */
static void case_geterr_no_error(void)
{
	errbuf_clear();
	kvm_t *kd = kvm_open2(opt_namelist, opt_core, O_RDONLY, errbuf, NULL);
	if (!check(kd != NULL, "case 4 kvm_open2 of the dump O_RDONLY", "NULL: %s", errbuf))
		return;

	unsigned int value = 0;
	ssize_t r = kvm_read(kd, 0, &value, sizeof(value));
	char injected[_POSIX2_LINE_MAX];
	snprintf(injected, sizeof(injected), "%s", kvm_geterr(kd));
	if (!check(r == -1 && errbuf_has_error(injected), "case 4 a kvm_read of address 0 fails and leaves an error text",
	           "kvm_read returned %zd, kvm_geterr \"%s\"", r, injected)) {
		kvm_close(kd);
		return;
	}

	struct nlist nl[2];
	memset(nl, 0, sizeof(nl));
	nl[0].n_name = "nr_cpu_ids";
	int n = kvm_nlist(kd, nl);
	check(n != -1, "case 4 kvm_nlist does not fail", "returned -1: %s", kvm_geterr(kd));
	if (nl[0].n_type == N_UNDF) {
		/* FreeBSD skips the case when the symbol is missing; on Linux 6.1 it must be there. */
		check(0, "case 4 nr_cpu_ids is found", "n_type is N_UNDF (kvm_nlist returned %d)", n);
		kvm_close(kd);
		return;
	}
	r = kvm_read(kd, nl[0].n_value, &value, sizeof(value));
	check(r == (ssize_t)sizeof(value), "case 4 kvm_read of nr_cpu_ids does not fail", "returned %zd: %s", r, kvm_geterr(kd));
	check(strcmp(kvm_geterr(kd), injected) == 0, "case 4 the error text is unchanged by the successful kvm_nlist and kvm_read",
	      "was \"%s\", now \"%s\"", injected, kvm_geterr(kd));
	int c = kvm_close(kd);
	check(c == 0, "case 4 kvm_close returns 0", "returned %d", c);
}

/* Cases 5-8: kvm_open (SunOS-style errors) fails for missing and invalid files. */
static void case_open_negative(void)
{
	char out[4096];
	kvm_t *kd = kvm_open(NULL, "/nonexistent", NULL, O_RDONLY, NULL);
	check(kd == NULL, "case 5 kvm_open of a nonexistent corefile (errstr NULL) returns NULL", "returned %p", (void *)kd);
	capture_begin();
	kd = kvm_open(NULL, "/nonexistent", NULL, O_RDONLY, progname);
	capture_end(out, sizeof(out));
	check(kd == NULL, "case 5 kvm_open of a nonexistent corefile (errstr progname) returns NULL", "returned %p", (void *)kd);

	kd = kvm_open("/nonexistent", "/dev/zero", NULL, O_RDONLY, NULL);
	check(kd == NULL, "case 6 kvm_open of a nonexistent execfile with /dev/zero (errstr NULL) returns NULL", "returned %p", (void *)kd);
	capture_begin();
	kd = kvm_open("/nonexistent", "/dev/zero", NULL, O_RDONLY, progname);
	capture_end(out, sizeof(out));
	check(kd == NULL, "case 6 kvm_open of a nonexistent execfile with /dev/zero (errstr progname) returns NULL", "returned %p", (void *)kd);

	capture_begin();
	kd = kvm_open(NULL, textfile, NULL, O_RDONLY, progname);
	capture_end(out, sizeof(out));
	check(kd == NULL, "case 7 kvm_open of a text file as corefile returns NULL", "returned %p", (void *)kd);

	capture_begin();
	kd = kvm_open(textfile, "/bin/sh", NULL, O_RDONLY, progname);
	capture_end(out, sizeof(out));
	check(kd == NULL, "case 8 kvm_open of a text file as execfile with /bin/sh as corefile returns NULL", "returned %p", (void *)kd);
}

/* Cases 9-12: kvm_open2 (BSD-style errors) writes errbuf only when given one. */
static void case_open2_negative(void)
{
	errbuf_clear();
	kvm_t *kd = kvm_open2(NULL, "/nonexistent", O_RDONLY, NULL, NULL);
	check(kd == NULL, "case 9 kvm_open2 of a nonexistent corefile (errbuf NULL) returns NULL", "returned %p", (void *)kd);
	check(!errbuf_has_error(errbuf), "case 9 errbuf stays empty when kvm_open2 got NULL", "errbuf \"%s\"", errbuf);
	kd = kvm_open2(NULL, "/nonexistent", O_RDONLY, errbuf, NULL);
	check(kd == NULL, "case 9 kvm_open2 of a nonexistent corefile (errbuf) returns NULL", "returned %p", (void *)kd);
	check(errbuf_has_error(errbuf), "case 9 errbuf has an error text", "errbuf is empty");
	check(strcmp(errbuf, "/nonexistent: No such file or directory") == 0, "case 9 the text is \"/nonexistent: No such file or directory\"",
	      "errbuf \"%s\"", errbuf);

	errbuf_clear();
	kd = kvm_open2("/nonexistent", "/dev/zero", O_RDONLY, NULL, NULL);
	check(kd == NULL, "case 10 kvm_open2 of a nonexistent execfile (errbuf NULL) returns NULL", "returned %p", (void *)kd);
	check(strlen(errbuf) == 0, "case 10 errbuf stays empty when kvm_open2 got NULL", "errbuf \"%s\"", errbuf);
	kd = kvm_open2("/nonexistent", "/dev/zero", O_RDONLY, errbuf, NULL);
	check(kd == NULL, "case 10 kvm_open2 of a nonexistent execfile (errbuf) returns NULL", "returned %p", (void *)kd);
	check(strlen(errbuf) > 0, "case 10 errbuf has an error text", "errbuf is empty");

	errbuf_clear();
	kd = kvm_open2(NULL, textfile, O_RDONLY, errbuf, NULL);
	check(kd == NULL, "case 11 kvm_open2 of a text file as corefile returns NULL", "returned %p", (void *)kd);
	check(errbuf_has_error(errbuf), "case 11 errbuf has an error text", "errbuf is empty");

	errbuf_clear();
	kd = kvm_open2(textfile, "/bin/sh", O_RDONLY, errbuf, NULL);
	check(kd == NULL, "case 12 kvm_open2 of a text file as execfile with /bin/sh returns NULL", "returned %p", (void *)kd);
	check(errbuf_has_error(errbuf), "case 12 errbuf has an error text", "errbuf is empty");
}

/* Case 13: kvm_open with errbuf passed as the SunOS errstr; nlist and read nr_cpu_ids. */
static void case_read_positive(void)
{
	unsigned int expected = (unsigned int)expect_u64("cpus");
	errbuf_clear();
	/* FreeBSD passes its (empty) errbuf as errstr: a SunOS-style descriptor whose prefix is "". */
	kvm_t *kd = kvm_open(opt_namelist, opt_core, NULL, O_RDONLY, errbuf);
	if (!check(kd != NULL, "case 13 kvm_open of the dump with errbuf as errstr", "returned NULL"))
		return;
	check(!errbuf_has_error(errbuf), "case 13 errbuf stays empty", "errbuf \"%s\"", errbuf);

	struct nlist nl[2];
	memset(nl, 0, sizeof(nl));
	nl[0].n_name = "nr_cpu_ids";
	int n = kvm_nlist(kd, nl);
	check(n != -1, "case 13 kvm_nlist does not fail", "returned -1: %s", kvm_geterr(kd));
	if (!check(nl[0].n_type != N_UNDF, "case 13 nr_cpu_ids is found", "n_type is N_UNDF")) {
		kvm_close(kd);
		return;
	}
	unsigned int value = 0;
	ssize_t r = kvm_read(kd, nl[0].n_value, &value, sizeof(value));
	check(r == (ssize_t)sizeof(value), "case 13 kvm_read of 4 bytes returns 4", "returned %zd: %s", r, kvm_geterr(kd));
	int c = kvm_close(kd);
	check(c == 0, "case 13 kvm_close returns 0", "returned %d", c);
	check(value == expected, "case 13 nr_cpu_ids equals the guest's CPU count", "read %u, the guest had %u CPUs", value, expected);
}

int main(int argc, char **argv)
{
	ktest_options(argc, argv);
	expect_load();

	snprintf(textfile, sizeof(textfile), "/tmp/kvm-bsd-cases-XXXXXX");
	int fd = mkstemp(textfile);
	if (fd < 0)
		bail("setup", "mkstemp: %s", strerror(errno));
	static const char text[] = "this is a text file\n";
	if (write(fd, text, sizeof(text) - 1) != (ssize_t)(sizeof(text) - 1))
		bail("setup", "write %s: %s", textfile, strerror(errno));
	close(fd);

	case_close_null();
	case_geterr_null();
	case_geterr_error();
	case_geterr_no_error();
	case_open_negative();
	case_open2_negative();
	case_read_positive();

	unlink(textfile);
	return ktest_done();
}
