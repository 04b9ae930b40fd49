/*
 * kvm_checks.c - the extra acceptance checks of FreeBSD's libkvm (libkvm-api.md section 5.5) that
 * apply to Linux images, plus the behaviour kvm.h documents where ours differs.
 *
 *   kvm_checks -M core [-N namelist] -E expect [-X truncated-core]
 *
 * Run here: 1-3, 5-11, 16-18 of section 5.5. Not run, because they are specific to FreeBSD
 * minidumps or to non-native images, which a Linux x86-64 host reading x86-64 Linux dumps never has:
 *   4   native vs non-native open without a resolver (every image this library opens on this host
 *       is native; kvm_native is checked instead);
 *   5   (first half) kvm_nlist of a non-native vmcore;
 *   12, 13  kvm_walk_pages on full ELF dumps vs minidumps (see kvm_walk.c for our kvm_walk_pages);
 *   14  kvm_kerndisp == 0 on amd64 dumps: ours documents the KASLR displacement instead, which is
 *       checked against the truth here;
 *   15  kvm_getprocs on a non-native dump, and kvm_getargv failing on every dump: ours reads argv
 *       from dumps on purpose (see kvm.h), which check_procs here, ps.c and kvm_sun.c check
 *       against the truth;
 *   19  minidump header versions and magic.
 *
 * Where ours deliberately differs from FreeBSD, the check tests OUR documented behaviour:
 *   - open error texts are ours (2: "<file>: empty file", not "empty file: Invalid argument");
 *   - 11: kvm_write on a dump opened O_RDONLY fails with our text, not "kvm_write not implemented
 *     for dead kernels" (ELF dumps opened O_RDWR are writable here);
 *   - kvm_nlist returns a per-CPU variable as the address of the copy of the CPU chosen with
 *     kvm_dpcpu_setcpu (CPU 0 by default), __per_cpu_offset[cpu] + the symbol's offset;
 *   - kvm_kerndisp is the KASLR displacement; kvm_getmaxcpu is nr_cpu_ids.
 */
#include "ktest.h"

static char errbuf[_POSIX2_LINE_MAX];

static kvm_t *open_dump(const char *name)
{
	errbuf[0] = '\0';
	kvm_t *kd = kvm_openfiles(opt_namelist, opt_core, NULL, O_RDONLY, errbuf);
	if (kd == NULL)
		bail(name, "kvm_openfiles of %s: %s", opt_core, errbuf);
	return kd;
}

/* 1. flags: only O_RDONLY and O_RDWR. */
static void check_flags(void)
{
	errbuf[0] = '\0';
	kvm_t *kd = kvm_openfiles(opt_namelist, opt_core, NULL, O_WRONLY, errbuf);
	check(kd == NULL && strcmp(errbuf, "bad flags arg") == 0, "5.5-1 O_WRONLY fails with \"bad flags arg\"", "kd %p, errbuf \"%s\"", (void *)kd, errbuf);
	if (kd != NULL)
		kvm_close(kd);

	errbuf[0] = '\0';
	kd = kvm_openfiles(opt_namelist, opt_core, NULL, O_RDONLY | O_CREAT, errbuf);
	check(kd == NULL && strcmp(errbuf, "bad flags arg") == 0, "5.5-1 O_RDONLY|O_CREAT fails with \"bad flags arg\"", "kd %p, errbuf \"%s\"", (void *)kd, errbuf);
	if (kd != NULL)
		kvm_close(kd);

	/* Opening O_RDWR writes nothing: the dump is left as it is. */
	errbuf[0] = '\0';
	kd = kvm_openfiles(opt_namelist, opt_core, NULL, O_RDWR, errbuf);
	check(kd != NULL, "5.5-1 O_RDWR is accepted", "errbuf \"%s\"", errbuf);
	if (kd != NULL)
		kvm_close(kd);
}

/* 2. An empty regular corefile is refused. */
static void check_empty_file(void)
{
	char path[] = "/tmp/kvm-checks-empty-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		check(0, "5.5-2 an empty corefile is refused", "mkstemp: %s", strerror(errno));
		return;
	}
	close(fd);
	errbuf[0] = '\0';
	kvm_t *kd = kvm_openfiles(opt_namelist, path, NULL, O_RDONLY, errbuf);
	/* FreeBSD: "empty file: Invalid argument"; ours: "<file>: empty file". */
	check(kd == NULL && strstr(errbuf, "empty file") != NULL, "5.5-2 an empty corefile is refused with \"empty file\"", "kd %p, errbuf \"%s\"", (void *)kd, errbuf);
	if (kd != NULL)
		kvm_close(kd);
	unlink(path);
}

/* 3. File names of MAXPATHLEN (1024) characters or more are refused. */
static void check_long_names(void)
{
	static char name[1025];
	memset(name, 'x', 1024);
	name[0] = '/';
	name[1024] = '\0';
	errbuf[0] = '\0';
	kvm_t *kd = kvm_openfiles(name, opt_core, NULL, O_RDONLY, errbuf);
	check(kd == NULL && strcmp(errbuf, "exec file name too long") == 0, "5.5-3 a 1024-character execfile is \"exec file name too long\"",
	      "kd %p, errbuf \"%s\"", (void *)kd, errbuf);
	errbuf[0] = '\0';
	kd = kvm_openfiles(opt_namelist, name, NULL, O_RDONLY, errbuf);
	check(kd == NULL && strcmp(errbuf, "core file name too long") == 0, "5.5-3 a 1024-character corefile is \"core file name too long\"",
	      "kd %p, errbuf \"%s\"", (void *)kd, errbuf);

	/* 1023 characters pass the length check and fail as a missing file (components of 200 characters). */
	for (int i = 201; i < 1023; i += 201)
		name[i] = '/';
	name[1023] = '\0';
	errbuf[0] = '\0';
	kd = kvm_openfiles(name, opt_core, NULL, O_RDONLY, errbuf);
	check(kd == NULL && strstr(errbuf, "No such file or directory") != NULL, "5.5-3 a 1023-character execfile passes the length check",
	      "kd %p, errbuf \"%s\"", (void *)kd, errbuf);
}

/* 5 (second half), 6: the nlist rules. */
static void check_nlist(kvm_t *kd)
{
	struct nlist empty[2];
	memset(empty, 0, sizeof(empty));
	int n = kvm_nlist(kd, empty);
	check(n == 0, "5.5-5 kvm_nlist of an empty list (NULL name) returns 0", "returned %d", n);
	empty[0].n_name = "";
	n = kvm_nlist(kd, empty);
	check(n == 0, "5.5-5 kvm_nlist of an empty list (\"\" name) returns 0", "returned %d", n);

	/* A missing symbol among present ones: count 1, zeroed entry, the others filled. */
	struct nlist nl[4];
	memset(nl, 0x5a, sizeof(nl));
	nl[0].n_name = "init_task";
	nl[1].n_name = "kvm_no_such_symbol_anywhere";
	nl[2].n_name = "_init_task";
	nl[3].n_name = NULL;
	n = kvm_nlist(kd, nl);
	unsigned long init_task = expect_u64("sym init_task");
	check(n == 1, "5.5-6 kvm_nlist returns the number of missing symbols", "returned %d", n);
	check(nl[1].n_type == N_UNDF && nl[1].n_value == 0, "5.5-6 a missing symbol has n_type N_UNDF and n_value 0", "n_type 0x%x, n_value 0x%lx",
	      nl[1].n_type, nl[1].n_value);
	check(nl[0].n_type != N_UNDF && nl[0].n_value == init_task, "5.5-6 init_task is found at the guest's address", "n_type 0x%x, n_value 0x%lx, guest 0x%lx",
	      nl[0].n_type, nl[0].n_value, init_task);
	check(nl[0].n_other == 0 && nl[0].n_desc == 0 && nl[1].n_other == 0 && nl[1].n_desc == 0, "5.5-6 kvm_nlist zeroes n_other and n_desc",
	      "n_other %d/%d, n_desc %d/%d", nl[0].n_other, nl[1].n_other, nl[0].n_desc, nl[1].n_desc);
	check(nl[2].n_value == nl[0].n_value && nl[2].n_type == nl[0].n_type, "5.5-6 \"_init_task\" resolves as \"init_task\"", "0x%lx vs 0x%lx",
	      nl[2].n_value, nl[0].n_value);

	/* Every address the guest's /proc/kallsyms recorded, through kvm_nlist and kvm_nlist2. */
	size_t at = 0;
	const char *v;
	while ((v = expect_next("sym", &at)) != NULL) {
		char name[128], what[200];
		unsigned long addr;
		if (sscanf(v, "%127s %lx", name, &addr) != 2)
			continue;
		struct nlist one[2];
		struct kvm_nlist two[2];
		memset(one, 0, sizeof(one));
		memset(two, 0, sizeof(two));
		one[0].n_name = name;
		two[0].n_name = name;
		int r1 = kvm_nlist(kd, one);
		int r2 = kvm_nlist2(kd, two);
		snprintf(what, sizeof(what), "5.5-6 kvm_nlist and kvm_nlist2 of %s give the guest's kallsyms address", name);
		check(r1 == 0 && r2 == 0 && one[0].n_value == addr && two[0].n_value == addr && one[0].n_type == two[0].n_type && one[0].n_type != N_UNDF, what,
		      "returned %d/%d, n_value 0x%lx/0x%llx, n_type 0x%x/0x%x, guest 0x%lx", r1, r2, one[0].n_value, (unsigned long long)two[0].n_value,
		      one[0].n_type, two[0].n_type, addr);
	}

	/* Text symbols are N_TEXT, data symbols N_DATA or N_BSS, both external. */
	struct nlist types[3];
	memset(types, 0, sizeof(types));
	types[0].n_name = "_stext";
	types[1].n_name = "linux_banner";
	n = kvm_nlist(kd, types);
	check(n == 0 && types[0].n_type == (N_TEXT | N_EXT), "5.5-6 _stext is N_TEXT|N_EXT", "returned %d, n_type 0x%x", n, types[0].n_type);
	check(types[1].n_type == (N_DATA | N_EXT) || types[1].n_type == (N_TEXT | N_EXT), "5.5-6 linux_banner is N_DATA|N_EXT (or read-only N_TEXT|N_EXT)",
	      "n_type 0x%x", types[1].n_type);
}

/* Ours: per-CPU symbols come back relocated to the copy of the CPU chosen by kvm_dpcpu_setcpu. */
static void check_percpu(kvm_t *kd)
{
	unsigned long offsets[2] = {0, 0};
	unsigned long table = sym(kd, "__per_cpu_offset");
	int ncpus = (int)expect_u64("cpus");
	if (!check(table != 0 && kvm_read(kd, table, offsets, sizeof(offsets)) == (ssize_t)sizeof(offsets), "per-CPU __per_cpu_offset[0..1] reads",
	           "address 0x%lx: %s", table, kvm_geterr(kd)))
		return;

	size_t at = 0;
	const char *v;
	while ((v = expect_next("percpu", &at)) != NULL) {
		char name[128], what[256];
		unsigned long raw;
		if (sscanf(v, "%127s %lx", name, &raw) != 2)
			continue;
		for (int cpu = 0; cpu < 2 && cpu < ncpus; cpu++) {
			int s = kvm_dpcpu_setcpu(kd, (unsigned)cpu);
			unsigned long addr = sym(kd, name);
			snprintf(what, sizeof(what), "per-CPU kvm_nlist(%s) after kvm_dpcpu_setcpu(%d) is __per_cpu_offset[%d] + its offset", name, cpu, cpu);
			check(s == 0 && addr == offsets[cpu] + raw, what, "kvm_dpcpu_setcpu returned %d, n_value 0x%lx, expected 0x%lx + 0x%lx", s, addr,
			      offsets[cpu], raw);

			unsigned long direct = 0, zpcpu = 0;
			ssize_t r1 = kvm_read(kd, addr, &direct, sizeof(direct));
			ssize_t r2 = kvm_read_zpcpu(kd, raw, &zpcpu, sizeof(zpcpu), cpu);
			snprintf(what, sizeof(what), "per-CPU kvm_read_zpcpu(%s, cpu %d) reads that CPU's copy", name, cpu);
			check(r1 == 8 && r2 == 8 && direct == zpcpu, what, "kvm_read %zd (0x%lx), kvm_read_zpcpu %zd (0x%lx)", r1, direct, r2, zpcpu);
		}
	}
	kvm_dpcpu_setcpu(kd, 0);

	int max = kvm_getmaxcpu(kd);
	char before[_POSIX2_LINE_MAX];
	snprintf(before, sizeof(before), "%s", kvm_geterr(kd));
	int s = kvm_dpcpu_setcpu(kd, (unsigned)max);
	check(s == -1 && strcmp(before, kvm_geterr(kd)) != 0, "per-CPU kvm_dpcpu_setcpu(nr_cpu_ids) fails with an error text", "returned %d, kvm_geterr \"%s\"", s,
	      kvm_geterr(kd));
}

/* 7, 8, 10: reads of unmapped addresses and of nothing. */
static void check_reads(kvm_t *kd)
{
	unsigned char buf[64];
	char want[64];

	ssize_t r = kvm_read(kd, 0, buf, 4);
	check(r == -1 && strncmp(kvm_geterr(kd), "invalid address (0x0)", 21) == 0, "5.5-7 kvm_read of address 0 is -1 with \"invalid address (0x0)\"",
	      "returned %zd, kvm_geterr \"%s\"", r, kvm_geterr(kd));

	unsigned long hole = find_unreadable_after_readable(kd);
	if (!check(hole != 0, "5.5-8 a readable kernel page followed by an unreadable one is found near _end", "none within 16 MiB of _end"))
		return;
	r = kvm_read(kd, hole, buf, 8);
	snprintf(want, sizeof(want), "invalid address (0x%lx)", hole);
	check(r == -1 && strncmp(kvm_geterr(kd), want, strlen(want)) == 0, "5.5-7 kvm_read of an unreadable kernel page is -1 with \"invalid address (0x<va>)\"",
	      "returned %zd, kvm_geterr \"%s\", expected it to start with \"%s\"", r, kvm_geterr(kd), want);

	r = kvm_read(kd, hole - 16, buf, 32);
	check(r == -1, "5.5-8 kvm_read from a mapped page into an unreadable one is -1, not a short count", "returned %zd", r);
	check(strncmp(kvm_geterr(kd), want, strlen(want)) == 0, "5.5-8 its error names the first unreadable address",
	      "kvm_geterr \"%s\", expected it to start with \"%s\"", kvm_geterr(kd), want);
	r = kvm_read2(kd, hole - 16, buf, 32);
	check(r == -1, "5.5-8 kvm_read2 across the same boundary is -1", "returned %zd", r);
	r = kvm_read(kd, hole - 16, buf, 16);
	check(r == 16, "5.5-8 kvm_read of the mapped bytes just before the boundary succeeds", "returned %zd: %s", r, kvm_geterr(kd));

	unsigned long banner = expect_u64("sym linux_banner");
	check(kvm_read(kd, banner, buf, 0) == 0, "5.5-10 kvm_read of 0 bytes at a mapped address returns 0", "did not");
	check(kvm_read(kd, 0, buf, 0) == 0, "5.5-10 kvm_read of 0 bytes at an unmapped address returns 0", "did not");
	check(kvm_read(kd, banner, NULL, 0) == 0, "5.5-10 kvm_read of 0 bytes into NULL returns 0", "did not");

	/* kvm_read2 takes the same addresses. */
	unsigned char a[64], b[64];
	ssize_t ra = kvm_read(kd, banner, a, sizeof(a));
	ssize_t rb = kvm_read2(kd, banner, b, sizeof(b));
	check(ra == 64 && rb == 64 && memcmp(a, b, 64) == 0 && memcmp(a, "Linux version ", 14) == 0, "kvm_read and kvm_read2 of linux_banner agree",
	      "returned %zd/%zd", ra, rb);
}

/* 9: a core file that ends early gives a short count, never -1. */
static void check_truncated(void)
{
	if (opt_extra == NULL) {
		skip("5.5-9 a read beyond the end of a truncated core is a short count", "no truncated core given (-X)");
		return;
	}
	errbuf[0] = '\0';
	kvm_t *kd = kvm_openfiles(opt_namelist, opt_extra, NULL, O_RDONLY, errbuf);
	if (!check(kd != NULL, "5.5-9 the truncated core opens", "errbuf \"%s\"", errbuf))
		return;
	unsigned long text = sym(kd, "_text"), end = sym(kd, "_end");
	static unsigned char page[4096];
	unsigned long lost = 0;
	ssize_t r = 0;
	/* The first kernel page, after a readable one, whose bytes lie beyond the end of the file. */
	int previous_ok = 0;
	for (unsigned long va = text; text != 0 && va < end; va += 4096) {
		r = kvm_read(kd, va, page, sizeof(page));
		if (previous_ok && r >= 0 && r < (ssize_t)sizeof(page)) {
			lost = va;
			break;
		}
		previous_ok = r == (ssize_t)sizeof(page);
	}
	if (check(lost != 0, "5.5-9 a kernel page beyond the end of the truncated core reads as a short count (>= 0, < n), not -1", "none found between _text and _end")) {
		r = kvm_read(kd, lost - 100, page, 200);
		check(r == 100, "5.5-9 a read running past the end of the truncated core returns the bytes before it", "returned %zd: %s", r,
		      kvm_geterr(kd));
	}
	kvm_close(kd);
}

/* 11: no writes through a dump opened O_RDONLY. */
static void check_write(kvm_t *kd)
{
	unsigned long banner = expect_u64("sym linux_banner");
	unsigned char buf[4] = {0};
	char before[_POSIX2_LINE_MAX];
	ssize_t r = kvm_read(kd, banner, buf, sizeof(buf));
	snprintf(before, sizeof(before), "%s", kvm_geterr(kd));
	ssize_t w = kvm_write(kd, banner, buf, sizeof(buf));
	check(r == 4 && w == -1, "5.5-11 kvm_write on a dump opened O_RDONLY returns -1", "kvm_read %zd, kvm_write %zd", r, w);
	check(strcmp(before, kvm_geterr(kd)) != 0 && kvm_geterr(kd)[0] != '\0', "5.5-11 the failed kvm_write leaves its error text", "kvm_geterr \"%s\"",
	      kvm_geterr(kd));
	w = kvm_kwrite(kd, banner, buf, sizeof(buf));
	check(w == -1, "5.5-11 kvm_kwrite on a dump opened O_RDONLY returns -1", "returned %zd", w);
}

/* 16: kvm_getswapinfo's edge cases and rows. */
static void check_swapinfo(kvm_t *kd)
{
	check(kvm_getswapinfo(NULL, NULL, 0, 0) == 0, "5.5-16 kvm_getswapinfo(NULL, NULL, 0, 0) returns 0", "did not");
	struct kvm_swap rows[16];
	memset(rows, 0x5a, sizeof(rows));
	check(kvm_getswapinfo(kd, rows, 0, 0) == -1, "5.5-16 kvm_getswapinfo with maxswap 0 returns -1", "did not");

	unsigned long long total_kib = 0;
	int areas = 0;
	size_t at = 0;
	const char *v;
	while ((v = expect_next("swap", &at)) != NULL) {
		char name[64];
		unsigned long long size, used;
		if (sscanf(v, "%63s %llu %llu", name, &size, &used) == 3) {
			total_kib += size;
			areas++;
		}
	}
	long page_kib = sysconf(_SC_PAGESIZE) / 1024;

	memset(rows, 0x5a, sizeof(rows));
	int n = kvm_getswapinfo(kd, rows, 1, 0);
	check(n == 0, "5.5-16 kvm_getswapinfo with maxswap 1 returns 0", "returned %d", n);
	check(n == 0 && rows[0].ksw_devname[0] == '\0' && (unsigned long long)rows[0].ksw_total * (unsigned long long)page_kib == total_kib,
	      "5.5-16 with maxswap 1, entry 0 is the total row (no name, the guest's total size)", "name \"%.31s\", ksw_total %u pages, guest %llu KiB",
	      rows[0].ksw_devname, rows[0].ksw_total, total_kib);

	memset(rows, 0x5a, sizeof(rows));
	n = kvm_getswapinfo(kd, rows, 16, 0);
	check(n == areas, "kvm_getswapinfo with room returns the number of areas (the total row's index)", "returned %d, the guest had %d", n, areas);
	at = 0;
	for (int i = 0; i < areas && i < n && (v = expect_next("swap", &at)) != NULL; i++) {
		char name[64], what[160];
		unsigned long long size, used;
		if (sscanf(v, "%63s %llu %llu", name, &size, &used) != 3)
			continue;
		/* Without SWIF_DEV_PREFIX a block device is named as devname() does, without "/dev/". */
		const char *want = strncmp(name, "/dev/", 5) == 0 ? name + 5 : name;
		snprintf(what, sizeof(what), "kvm_getswapinfo row %d is %s, sized as /proc/swaps", i, want);
		check(strcmp(rows[i].ksw_devname, want) == 0 && (unsigned long long)rows[i].ksw_total * (unsigned long long)page_kib == size &&
		          (unsigned long long)rows[i].ksw_used * (unsigned long long)page_kib >= used && rows[i].ksw_used <= rows[i].ksw_total,
		      what, "name \"%.31s\", total %u pages, used %u pages; guest %llu KiB, %llu KiB used", rows[i].ksw_devname, rows[i].ksw_total,
		      rows[i].ksw_used, size, used);
	}
}

/* 17: the per-CPU queries' NULL conventions, and their values. */
static void check_cpus(kvm_t *kd)
{
	int cpus = (int)expect_u64("cpus");
	check(kvm_getmaxcpu(NULL) == 0, "5.5-17 kvm_getmaxcpu(NULL) returns 0", "did not");
	void *p = kvm_getpcpu(NULL, 0);
	check(p == NULL, "5.5-17 kvm_getpcpu(NULL, 0) returns NULL", "returned %p", p);
	/* kvm_getcptime(NULL, NULL) == 0 is checked by kvm_cptime.c. */

	int max = kvm_getmaxcpu(kd), online = kvm_getncpus(kd);
	check(max == cpus, "kvm_getmaxcpu is nr_cpu_ids, the guest's CPU count", "returned %d, the guest had %d", max, cpus);
	check(online == cpus, "kvm_getncpus is the guest's CPU count", "returned %d, the guest had %d", online, cpus);

	unsigned long offsets[64];
	unsigned long table = sym(kd, "__per_cpu_offset");
	int have_offsets = cpus <= 64 && table != 0 && kvm_read(kd, table, offsets, sizeof(offsets[0]) * (size_t)cpus) == (ssize_t)(sizeof(offsets[0]) * (size_t)cpus);
	for (int cpu = 0; cpu < cpus; cpu++) {
		char what[128];
		struct pcpu *pc = kvm_getpcpu(kd, cpu);
		snprintf(what, sizeof(what), "kvm_getpcpu(%d) returns a struct pcpu", cpu);
		if (!check(pc != NULL && pc != (void *)-1, what, "returned %p: %s", (void *)pc, kvm_geterr(kd)))
			continue;
		snprintf(what, sizeof(what), "kvm_getpcpu(%d) describes CPU %d with its per-CPU offset and current task", cpu, cpu);
		check(pc->pc_cpuid == (uint32_t)cpu && have_offsets && pc->pc_dynamic == offsets[cpu] && pc->pc_curthread != NULL, what,
		      "pc_cpuid %u, pc_dynamic 0x%lx (__per_cpu_offset 0x%lx), pc_curthread %p", pc->pc_cpuid, (unsigned long)pc->pc_dynamic,
		      have_offsets ? offsets[cpu] : 0, pc->pc_curthread);
		free(pc);
	}
	p = kvm_getpcpu(kd, max);
	check(p == NULL, "kvm_getpcpu(nr_cpu_ids) returns NULL", "returned %p", p);
}

/* 18: a SunOS-style descriptor prints hard errors with its prefix and keeps soft ones. */
static void check_sun_style(void)
{
	char out[4096];
	kvm_t *kd = kvm_open(opt_namelist, opt_core, NULL, O_RDONLY, "kvmsun");
	if (!check(kd != NULL, "5.5-18 kvm_open with errstr \"kvmsun\" opens the dump", "returned NULL"))
		return;
	capture_begin();
	int r = kvm_dpcpu_setcpu(kd, 100000);
	capture_end(out, sizeof(out));
	check(r == -1, "5.5-18 kvm_dpcpu_setcpu(100000) fails", "returned %d", r);
	check(strncmp(out, "kvmsun: ", 8) == 0 && strchr(out, '\n') != NULL, "5.5-18 the hard error is printed on stderr as \"kvmsun: message\\n\"",
	      "stderr \"%s\"", out);
	check(kvm_geterr(kd)[0] == '\0', "5.5-18 the hard error does not reach kvm_geterr", "kvm_geterr \"%s\"", kvm_geterr(kd));

	unsigned char buf[4];
	capture_begin();
	ssize_t n = kvm_read(kd, 0, buf, sizeof(buf));
	capture_end(out, sizeof(out));
	check(n == -1 && strncmp(kvm_geterr(kd), "invalid address (0x0)", 21) == 0, "5.5-18 the soft error \"invalid address\" lands in kvm_geterr",
	      "returned %zd, kvm_geterr \"%s\"", n, kvm_geterr(kd));
	check(out[0] == '\0', "5.5-18 the soft error is not printed", "stderr \"%s\"", out);
	kvm_close(kd);
}

/*
 * Ours (5.5-15 differs): kvm_getprocs selects as FreeBSD's does, and kvm_getargv/kvm_getenvv read
 * a process's strings from the dump (FreeBSD: NULL, "cannot read user space from dead kernel").
 */
static void check_procs(kvm_t *kd)
{
	int argv_pid = (int)expect_u64("role argv"), nonroot = (int)expect_u64("role nonRoot");
	int user_pages = (int)expect_u64("user_pages");
	const struct truth_proc *t = truth_proc(argv_pid);
	char why[256];
	int n = -1;
	struct kinfo_proc *kp = kvm_getprocs(kd, KERN_PROC_PID, argv_pid, &n);
	if (!check(kp != NULL && n == 1 && kp->ki_pid == argv_pid && kp->ki_structsize == KINFO_PROC_SIZE && t != NULL,
	           "kvm_getprocs(KERN_PROC_PID) gives the one process", "returned %p, count %d: %s", (void *)kp, n, kvm_geterr(kd)))
		return;
	check(kp->ki_ppid == t->ppid && kp->ki_ruid == t->ruid && kp->ki_uid == t->euid && strncmp(kp->ki_comm, t->comm, COMMLEN) == 0,
	      "kvm_getprocs(KERN_PROC_PID) fills the guest's ids and name", "ppid %d ruid %u uid %u comm \"%s\"", kp->ki_ppid, kp->ki_ruid, kp->ki_uid, kp->ki_comm);

	if (user_pages) {
		char **argv = kvm_getargv(kd, kp, 0);
		check(argv != NULL && vector_equals_area(argv, t->cmdline, t->cmdline_len, why, sizeof(why)), "kvm_getargv on a dump gives /proc/PID/cmdline",
		      "%s", argv == NULL ? kvm_geterr(kd) : why);
		char **envv = kvm_getenvv(kd, kp, 0);
		check(envv != NULL && vector_equals_area(envv, t->environ, t->environ_len, why, sizeof(why)), "kvm_getenvv on a dump gives /proc/PID/environ",
		      "%s", envv == NULL ? kvm_geterr(kd) : why);

		/* nchr bounds the bytes, NULs included: a prefix of the arguments. */
		argv = kvm_getargv(kd, kp, 10);
		size_t used = 0;
		int prefix = argv != NULL;
		for (int i = 0; prefix && argv[i] != NULL; i++) {
			size_t len = strlen(argv[i]);
			prefix = used + len <= t->cmdline_len && memcmp(argv[i], t->cmdline + used, len) == 0;
			used += len + 1;
		}
		check(prefix && used <= 10 && used > 0, "kvm_getargv with nchr 10 gives at most 10 bytes of the arguments", "%zu bytes%s", used,
		      prefix ? "" : ", not a prefix of the arguments");
	} else {
		skip("kvm_getargv on a dump gives /proc/PID/cmdline", "this dump has no user pages (makedumpfile -d 31)");
	}

	kp = kvm_getprocs(kd, KERN_PROC_PID, 2, &n);
	check(kp != NULL && n == 1 && (kp->ki_flag & P_KPROC) != 0 && (kp->ki_flag & P_SYSTEM) != 0, "kthreadd (pid 2) is P_KPROC | P_SYSTEM", "count %d, ki_flag 0x%lx", n,
	      kp != NULL ? kp->ki_flag : 0L);
	char **none = kp != NULL ? kvm_getargv(kd, kp, 0) : NULL;
	check(kp != NULL && none == NULL, "kvm_getargv of a kernel thread is NULL", "returned a vector");

	errno = 0;
	n = -1;
	kp = kvm_getprocs(kd, KERN_PROC_PID, 999999, &n);
	check(kp == NULL && n == 0 && errno == ESRCH, "kvm_getprocs of a missing pid is NULL, count 0, errno ESRCH", "returned %p, count %d, errno %d", (void *)kp, n,
	      errno);

	const struct truth_proc *nr = truth_proc(nonroot);
	kp = nr != NULL ? kvm_getprocs(kd, KERN_PROC_UID, (int)nr->euid, &n) : NULL;
	check(kp != NULL && n == 1 && kp->ki_pid == nonroot, "kvm_getprocs(KERN_PROC_UID) selects the guest's one non-root process", "returned %p, count %d, first pid %d",
	      (void *)kp, n, kp != NULL ? kp->ki_pid : -1);

	/* KERN_PROC_ALL lists every thread: the threaded process has as many entries as it had threads. */
	size_t at = 0;
	const char *v;
	while ((v = expect_next("threads", &at)) != NULL) {
		int pid = 0, count = 0, entries = 0;
		char what[128];
		if (sscanf(v, "%d %d", &pid, &count) != 2)
			continue;
		kp = kvm_getprocs(kd, KERN_PROC_ALL, 0, &n);
		for (int i = 0; kp != NULL && i < n; i++)
			entries += kp[i].ki_pid == pid;
		int procs = 0;
		struct kinfo_proc *one = kvm_getprocs(kd, KERN_PROC_PROC, 0, &n);
		for (int i = 0; one != NULL && i < n; i++)
			procs += one[i].ki_pid == pid && one[i].ki_numthreads == count;
		snprintf(what, sizeof(what), "pid %d's %d threads: %d entries with KERN_PROC_ALL, one with KERN_PROC_PROC", pid, count, count);
		check(entries == count && procs == 1, what, "KERN_PROC_ALL gave %d entries, KERN_PROC_PROC %d with ki_numthreads %d", entries, procs, count);
	}
}

/*
 * Ours: what kinfo_proc carries beyond FreeBSD's dump path, for the processes the driver lists
 * ("kinfo pid tpgid tsid sigign sigcatch minflt cminflt", from /proc/PID/stat and status): the
 * tty's foreground group and session, SIG_IGN and caught signals (Linux signal n at bit n - 1 of
 * __bits) and the fault counts of ki_rusage and ki_rusage_ch.
 */
static uint64_t sigset64(const kvm_sigset_t *set)
{
	return (uint64_t)set->__bits[0] | (uint64_t)set->__bits[1] << 32;
}

static void check_kinfo_details(kvm_t *kd)
{
	size_t at = 0;
	const char *v;
	int compared = 0, tty = 0;
	char why[256] = "";
	while ((v = expect_next("kinfo", &at)) != NULL) {
		int pid, tpgid, tsid, n = 0;
		unsigned long long ign, caught, minflt, cminflt;
		if (sscanf(v, "%d %d %d %llx %llx %llu %llu", &pid, &tpgid, &tsid, &ign, &caught, &minflt, &cminflt) != 7)
			bail("expectations", "bad kinfo line: %.80s", v);
		struct kinfo_proc *kp = kvm_getprocs(kd, KERN_PROC_PID, pid, &n);
		if (kp == NULL || n != 1) {
			snprintf(why, sizeof(why), "pid %d: kvm_getprocs gave %d entries: %s", pid, n, kvm_geterr(kd));
			break;
		}
		if (kp->ki_tpgid != tpgid || kp->ki_tsid != tsid || sigset64(&kp->ki_sigignore) != ign || sigset64(&kp->ki_sigcatch) != caught ||
		    kp->ki_sigignore.__bits[2] != 0 || kp->ki_sigcatch.__bits[3] != 0 || (unsigned long long)kp->ki_rusage.ru_minflt != minflt ||
		    (unsigned long long)kp->ki_rusage_ch.ru_minflt != cminflt) {
			snprintf(why, sizeof(why), "pid %d: tpgid %d tsid %d ignore 0x%llx catch 0x%llx minflt %ld cminflt %ld; /proc: %d %d 0x%llx 0x%llx %llu %llu", pid,
			         kp->ki_tpgid, kp->ki_tsid, (unsigned long long)sigset64(&kp->ki_sigignore), (unsigned long long)sigset64(&kp->ki_sigcatch),
			         kp->ki_rusage.ru_minflt, kp->ki_rusage_ch.ru_minflt, tpgid, tsid, ign, caught, minflt, cminflt);
			break;
		}
		compared++;
		tty += tpgid > 0;
	}
	check(why[0] == '\0' && compared >= 10 && tty >= 1, "kinfo_proc's ki_tpgid, ki_tsid, ki_sigignore, ki_sigcatch and fault counts equal /proc's for the sleeping processes",
	      "%s (%d compared, %d with a tty)", why, compared, tty);
}

/* kvm_open2's resolver: consulted before the namelist; what it resolves is N_DATA | N_EXT. */
static int resolver_calls;

static int resolve(const char *name, kvaddr_t *addr)
{
	resolver_calls++;
	if (strcmp(name, "kvmtest_resolved") == 0) {
		*addr = 0xffffffff81234560ULL;
		return 0;
	}
	return 1; /* not ours: the namelist answers */
}

static void check_resolver(void)
{
	errbuf[0] = '\0';
	kvm_t *kd = kvm_open2(opt_namelist, opt_core, O_RDONLY, errbuf, resolve);
	if (!check(kd != NULL, "kvm_open2 with a resolver opens the dump", "errbuf \"%s\"", errbuf))
		return;
	struct nlist nl[3];
	memset(nl, 0, sizeof(nl));
	nl[0].n_name = "kvmtest_resolved";
	nl[1].n_name = "init_task";
	int n = kvm_nlist(kd, nl);
	unsigned long init_task = expect_u64("sym init_task");
	check(n == 0 && nl[0].n_value == 0xffffffff81234560UL && nl[0].n_type == (N_DATA | N_EXT), "a symbol the resolver knows is its address, N_DATA|N_EXT",
	      "returned %d, n_value 0x%lx, n_type 0x%x", n, nl[0].n_value, nl[0].n_type);
	check(nl[1].n_value == init_task && nl[1].n_type != N_UNDF, "a symbol the resolver does not know comes from the namelist", "n_value 0x%lx, guest 0x%lx",
	      nl[1].n_value, init_task);
	check(resolver_calls > 0, "the resolver was called", "never");
	kvm_close(kd);
}

/* Ours: kvm_native, kvm_kerndisp, kvm_getloadavg, and a value the truth records. */
static void check_ours(kvm_t *kd)
{
	check(kvm_native(kd) == 1, "kvm_native of an x86-64 dump on an x86-64 host is 1", "returned %d", kvm_native(kd));
	long long disp = (long long)kvm_kerndisp(kd), kaslr = (long long)expect_u64("kaslr_offset");
	check(disp == kaslr, "kvm_kerndisp is the guest's KASLR displacement", "returned 0x%llx, the guest's offset 0x%llx", disp, kaslr);

	unsigned long pob_addr = expect_u64("sym page_offset_base"), pob = 0, want = expect_u64("page_offset_base");
	ssize_t r = kvm_read(kd, pob_addr, &pob, sizeof(pob));
	check(r == 8 && pob == want, "kvm_read of page_offset_base gives the guest's direct-map base", "returned %zd, 0x%lx, guest 0x%lx", r, pob, want);

	double load[3] = {-1, -1, -1}, truth[3];
	const char *v = expect_str("loadavg");
	if (v != NULL && sscanf(v, "%lf %lf %lf", &truth[0], &truth[1], &truth[2]) == 3) {
		int n = kvm_getloadavg(kd, load, 3);
		int close_enough = n == 3;
		for (int i = 0; i < 3; i++)
			close_enough = close_enough && load[i] > truth[i] - 0.01 && load[i] < truth[i] + 0.01;
		check(close_enough, "kvm_getloadavg is within 0.01 of the guest's /proc/loadavg at the stop", "returned %d: %.4f %.4f %.4f, guest %.2f %.2f %.2f", n,
		      load[0], load[1], load[2], truth[0], truth[1], truth[2]);
		n = kvm_getloadavg(kd, load, 1);
		check(n == 1, "kvm_getloadavg with nelem 1 returns 1", "returned %d", n);
	}
}

int main(int argc, char **argv)
{
	ktest_options(argc, argv);
	expect_load();
	truth_load_procs();

	check_flags();
	check_empty_file();
	check_long_names();

	kvm_t *kd = open_dump("open");
	check_nlist(kd);
	check_percpu(kd);
	check_reads(kd);
	check_write(kd);
	check_swapinfo(kd);
	check_cpus(kd);
	check_procs(kd);
	check_kinfo_details(kd);
	check_ours(kd);
	int c = kvm_close(kd);
	check(c == 0, "kvm_close returns 0", "returned %d", c);
	errno = 0;
	c = kvm_close(kd);
	check(c == -1 && errno == EINVAL, "kvm_close of a closed descriptor fails with EINVAL", "returned %d, errno %d", c, errno);

	check_truncated();
	check_resolver();
	check_sun_style();
	return ktest_done();
}
