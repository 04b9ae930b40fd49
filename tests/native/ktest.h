/*
 * ktest.h - the small harness shared by the C tests of libkvm.so (the .c files of tests/native).
 *
 * Each test program prints one line per check, "ok - NAME" or "not ok - NAME: DETAIL", then a
 * summary comment "# N checks, M failed", and exits 1 if any check failed (2 for bad usage, 3 when
 * a precondition fails and no check can run). The C# driver (tests/Kvm.IntegrationTests/
 * NativeLibraryTests.cs) runs them and shows the failing lines.
 *
 * Everything here is plain C11 + POSIX: the programs use only <kvm.h> and libc (and pthreads).
 *
 * Common options:
 *   -M core       the dump (corefile)
 *   -N namelist   System.map, or absent: the kernel's own kallsyms
 *   -S swap       the guest's swap image (optional)
 *   -E expect     the expectation file the driver writes from truth.json (see below)
 *   -X file       a second image some checks need (e.g. a truncated copy of a dump)
 *
 * The expectation file has one fact per line, "KEY VALUE...", for example
 *   cpus 2
 *   page_offset_base 0xffff8e9040000000
 *   sym linux_banner 0xffffffff94d61900
 *   proc PID PPID RUID EUID KTHREAD COMMHEX CMDLINEHEX ENVIRONHEX
 * Hex strings of an empty value are written as "-".
 */
#ifndef KTEST_H
#define KTEST_H

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>

static int ktest_checks;
static int ktest_failed;

/* Records one check. The detail is printed only when the check fails. */
static inline int check(int passed, const char *name, const char *fmt, ...)
{
	ktest_checks++;
	if (passed) {
		printf("ok - %s\n", name);
	} else {
		char detail[4096];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
		ktest_failed++;
		/* One ASCII line per check: other bytes (newlines, the guest's non-UTF-8 bytes) print as \xNN. */
		printf("not ok - %s: ", name);
		for (const unsigned char *p = (const unsigned char *)detail; *p != '\0'; p++) {
			if (*p < 0x20 || *p >= 0x7f || *p == '\\')
				printf("\\x%02x", *p);
			else
				putchar(*p);
		}
		putchar('\n');
	}
	fflush(stdout);
	return passed;
}

/* A check that is not run here, with the reason (counted neither as passed nor as failed). */
static inline void skip(const char *name, const char *reason)
{
	printf("ok - %s # SKIP %s\n", name, reason);
	fflush(stdout);
}

static inline int ktest_done(void)
{
	printf("# %d checks, %d failed\n", ktest_checks, ktest_failed);
	return ktest_failed == 0 ? 0 : 1;
}

/* A precondition every later check needs: print it as a failed check and stop. */
static inline void bail(const char *name, const char *fmt, ...)
{
	char detail[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	check(0, name, "%s", detail);
	ktest_done();
	exit(3);
}

/* ---- options ------------------------------------------------------------------------------ */

static const char *opt_core;
static const char *opt_namelist;
static const char *opt_swap;
static const char *opt_expect;
static const char *opt_extra;

static inline void ktest_options(int argc, char **argv)
{
	int c;
	while ((c = getopt(argc, argv, "M:N:S:E:X:")) != -1) {
		switch (c) {
		case 'M': opt_core = optarg; break;
		case 'N': opt_namelist = optarg; break;
		case 'S': opt_swap = optarg; break;
		case 'E': opt_expect = optarg; break;
		case 'X': opt_extra = optarg; break;
		default:
			fprintf(stderr, "usage: %s -M core [-N namelist] [-S swap] [-E expect] [-X file]\n", argv[0]);
			exit(2);
		}
	}
	if (opt_core == NULL) {
		fprintf(stderr, "%s: -M core is required\n", argv[0]);
		exit(2);
	}
}

/* ---- the expectation file ----------------------------------------------------------------- */

static char **expect_lines;
static size_t expect_count;

static inline void expect_load(void)
{
	if (opt_expect == NULL)
		bail("expectations", "no -E file given");
	FILE *f = fopen(opt_expect, "r");
	if (f == NULL)
		bail("expectations", "%s: %s", opt_expect, strerror(errno));
	size_t cap = 0;
	char *line = NULL;
	size_t len = 0;
	ssize_t n;
	while ((n = getline(&line, &len, f)) != -1) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (expect_count == cap) {
			cap = cap ? cap * 2 : 64;
			expect_lines = realloc(expect_lines, cap * sizeof(*expect_lines));
			if (expect_lines == NULL)
				bail("expectations", "out of memory");
		}
		expect_lines[expect_count++] = strdup(line);
	}
	free(line);
	fclose(f);
}

/* The value of the first line "KEY VALUE", or NULL. */
static inline const char *expect_str(const char *key)
{
	size_t k = strlen(key);
	for (size_t i = 0; i < expect_count; i++) {
		if (strncmp(expect_lines[i], key, k) == 0 && expect_lines[i][k] == ' ')
			return expect_lines[i] + k + 1;
	}
	return NULL;
}

/* The value of "KEY VALUE" as a number (decimal or 0x hex); the program stops if it is missing. */
static inline uint64_t expect_u64(const char *key)
{
	const char *v = expect_str(key);
	if (v == NULL)
		bail("expectations", "%s: no '%s' line", opt_expect, key);
	return strtoull(v, NULL, 0);
}

/* Iterates the lines "KEY ...": *at starts at 0; returns the text after "KEY " or NULL at the end. */
static inline const char *expect_next(const char *key, size_t *at)
{
	size_t k = strlen(key);
	while (*at < expect_count) {
		const char *line = expect_lines[(*at)++];
		if (strncmp(line, key, k) == 0 && line[k] == ' ')
			return line + k + 1;
	}
	return NULL;
}

/* Decodes hex ("-" is empty) into a malloc'ed buffer; *len gets its length. NULL on bad input. */
static inline unsigned char *hex_decode(const char *hex, size_t hexlen, size_t *len)
{
	if (hexlen == 1 && hex[0] == '-')
		hexlen = 0;
	if (hexlen % 2 != 0)
		return NULL;
	unsigned char *out = malloc(hexlen / 2 + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < hexlen / 2; i++) {
		unsigned v = 0;
		for (int j = 0; j < 2; j++) {
			char c = hex[2 * i + j];
			v <<= 4;
			if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
			else { free(out); return NULL; }
		}
		out[i] = (unsigned char)v;
	}
	out[hexlen / 2] = '\0';
	*len = hexlen / 2;
	return out;
}

/* One process of the truth ("proc" lines). */
struct truth_proc {
	int pid, ppid;
	unsigned ruid, euid;
	int kthread;
	char *comm;
	unsigned char *cmdline; /* /proc/PID/cmdline: NUL-terminated strings */
	size_t cmdline_len;
	unsigned char *environ;
	size_t environ_len;
};

static struct truth_proc *truth_procs;
static size_t truth_nprocs;

static inline void truth_load_procs(void)
{
	size_t at = 0;
	const char *v;
	while ((v = expect_next("proc", &at)) != NULL) {
		struct truth_proc p;
		char *copy = strdup(v), *save = NULL, *field[8];
		int n = 0;
		memset(&p, 0, sizeof(p));
		for (char *t = strtok_r(copy, " ", &save); t != NULL && n < 8; t = strtok_r(NULL, " ", &save))
			field[n++] = t;
		if (n != 8)
			bail("expectations", "bad proc line: %.80s", v);
		p.pid = atoi(field[0]);
		p.ppid = atoi(field[1]);
		p.ruid = (unsigned)strtoul(field[2], NULL, 10);
		p.euid = (unsigned)strtoul(field[3], NULL, 10);
		p.kthread = atoi(field[4]);
		size_t len;
		p.comm = (char *)hex_decode(field[5], strlen(field[5]), &len);
		p.cmdline = hex_decode(field[6], strlen(field[6]), &p.cmdline_len);
		p.environ = hex_decode(field[7], strlen(field[7]), &p.environ_len);
		if (p.comm == NULL || p.cmdline == NULL || p.environ == NULL)
			bail("expectations", "bad hex in proc line for pid %d", p.pid);
		free(copy);
		truth_procs = realloc(truth_procs, (truth_nprocs + 1) * sizeof(*truth_procs));
		if (truth_procs == NULL)
			bail("expectations", "out of memory");
		truth_procs[truth_nprocs++] = p;
	}
	if (truth_nprocs == 0)
		bail("expectations", "no proc lines");
}

static inline const struct truth_proc *truth_proc(int pid)
{
	for (size_t i = 0; i < truth_nprocs; i++) {
		if (truth_procs[i].pid == pid)
			return &truth_procs[i];
	}
	return NULL;
}

/* Counts the NUL-terminated strings of a /proc cmdline/environ area. */
static inline int area_count(const unsigned char *area, size_t len)
{
	int n = 0;
	for (size_t i = 0; i < len; i++) {
		if (area[i] == '\0')
			n++;
	}
	if (len > 0 && area[len - 1] != '\0')
		n++;
	return n;
}

/*
 * Compares a NULL-terminated vector with a /proc area: equal iff the strings, each followed by
 * its NUL, make up the area byte for byte. *why explains the first difference.
 */
static inline int vector_equals_area(char *const *vec, const unsigned char *area, size_t len, char *why, size_t whylen)
{
	size_t pos = 0;
	int i = 0;
	for (; vec != NULL && vec[i] != NULL; i++) {
		size_t n = strlen(vec[i]);
		if (pos + n > len || memcmp(vec[i], area + pos, n) != 0 || (pos + n < len && area[pos + n] != '\0')) {
			snprintf(why, whylen, "string %d \"%.60s\" differs from the truth at byte %zu", i, vec[i], pos);
			return 0;
		}
		pos += n + 1;
	}
	/* The area's last string may lack its NUL (a process that rewrote it): then pos is len + 1. */
	if (pos != len && !(pos == len + 1 && len > 0 && area[len - 1] != '\0')) {
		snprintf(why, whylen, "%d strings make %zu bytes, the truth has %zu", i, pos, len);
		return 0;
	}
	return 1;
}

/* ---- stderr capture ----------------------------------------------------------------------- */

static int capture_saved = -1;
static FILE *capture_file;

/* Sends file descriptor 2 to a temporary file until capture_end. */
static inline void capture_begin(void)
{
	fflush(stderr);
	capture_file = tmpfile();
	if (capture_file == NULL)
		bail("stderr capture", "tmpfile: %s", strerror(errno));
	capture_saved = dup(2);
	if (capture_saved < 0 || dup2(fileno(capture_file), 2) < 0)
		bail("stderr capture", "dup: %s", strerror(errno));
}

/* Restores stderr and copies what was written to it (NUL-terminated, truncated to size). */
static inline void capture_end(char *out, size_t size)
{
	fflush(stderr);
	dup2(capture_saved, 2);
	close(capture_saved);
	capture_saved = -1;
	rewind(capture_file);
	size_t n = fread(out, 1, size - 1, capture_file);
	out[n] = '\0';
	fclose(capture_file);
	capture_file = NULL;
}

/* ---- helpers on an open descriptor -------------------------------------------------------- */

/* The address of a symbol via kvm_nlist, 0 if not found. */
static inline unsigned long sym(kvm_t *kd, const char *name)
{
	struct nlist nl[2];
	memset(nl, 0, sizeof(nl));
	nl[0].n_name = name;
	if (kvm_nlist(kd, nl) != 0 || nl[0].n_type == N_UNDF)
		return 0;
	return nl[0].n_value;
}

/*
 * Finds a kernel page that reads and is followed by one that does not (translation fails, or the
 * page is not in the image): scans page by page from 16 MiB before the end of the kernel image
 * (_end), where the kernel's mapping ends, to 16 MiB after it. In a full dump the first such page
 * is the end of the mapping; makedumpfile -d 31 dumps also drop pages inside the kernel image.
 * Returns the address of that unreadable page, or 0.
 */
static inline unsigned long find_unreadable_after_readable(kvm_t *kd)
{
	unsigned long start = sym(kd, "_end");
	if (start == 0)
		start = sym(kd, "__bss_stop");
	if (start == 0)
		return 0;
	start = ((start - 1) & ~0xfffUL) - (16UL << 20);
	unsigned long text = sym(kd, "_text");
	if (text > start)
		start = text;
	unsigned char byte;
	int previous = 0;
	for (unsigned long va = start; va < start + (32UL << 20); va += 4096) {
		int readable = kvm_read(kd, va, &byte, 1) == 1;
		if (previous && !readable)
			return va;
		previous = readable;
	}
	return 0;
}

#endif /* KTEST_H */
