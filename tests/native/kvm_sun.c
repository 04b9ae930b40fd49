/*
 * kvm_sun.c - the SunOS/illumos interface of libkvm.so against the guest's truth.
 *
 *   kvm_sun -M core [-N namelist] [-S swap] -E expect
 *
 * Checks: kvm_open's "errstr: message" on stderr; kvm_nextproc visits every process once and then
 * returns NULL; kvm_setproc rewinds; kvm_getproc finds pid 1, returns NULL for a missing pid, and
 * (as illumos) leaves kvm_nextproc after the process it found; kvm_getu fills u_comm and u_psargs;
 * kvm_getcmd gives argv and the environment equal to /proc/PID/cmdline and environ; kvm_kread
 * returns the bytes before an unreadable page where kvm_read returns -1; kvm_uread reads the
 * current process's argument area (u_arg_start .. u_arg_end) equal to /proc/PID/cmdline.
 *
 * The swap image (-S, kvm_open's swapfile) brings back the argument pages the guest swapped out.
 * In a dump without user pages (makedumpfile -d 31: "user_pages 0" in the expectation file) argv
 * may be unreadable; then kvm_getcmd must fail (-1) rather than return wrong strings. Without -S,
 * the processes the truth lists as "swapped" must fail the same way, naming the swapped-out page.
 */
#include "ktest.h"

#define PF_KTHREAD 0x00200000 /* Linux include/linux/sched.h */
#define MAXPROCS 4096

static int user_pages;

/* Runs kvm_nextproc to the end; returns how many processes it gave (pids into out). */
static int walk(kvm_t *kd, int *out, int max, int *extra_ok)
{
	int n = 0;
	struct proc *p;
	*extra_ok = 1;
	while ((p = kvm_nextproc(kd)) != NULL) {
		if (n < max)
			out[n] = p->p_pid;
		n++;
		if (truth_proc(p->p_pid) == NULL && p->p_pid != 0 && (p->p_flag & PF_KTHREAD) == 0) {
			check(0, "kvm_nextproc gives only the guest's processes, pid 0 and kernel threads", "pid %d (flags 0x%llx) is not in the truth", p->p_pid,
			      (unsigned long long)p->p_flag);
			*extra_ok = 0;
		}
	}
	return n;
}

static void check_open_errors(void)
{
	char out[4096];
	capture_begin();
	kvm_t *kd = kvm_open(NULL, "/nonexistent", NULL, O_RDONLY, "kvmsun");
	capture_end(out, sizeof(out));
	check(kd == NULL, "kvm_open of a missing corefile returns NULL", "returned %p", (void *)kd);
	check(strcmp(out, "kvmsun: /nonexistent: No such file or directory\n") == 0, "kvm_open prints \"errstr: message\" on stderr",
	      "stderr \"%s\"", out);

	capture_begin();
	kd = kvm_open(NULL, "/nonexistent", NULL, O_RDONLY, NULL);
	capture_end(out, sizeof(out));
	check(kd == NULL && out[0] == '\0', "kvm_open with errstr NULL fails silently", "returned %p, stderr \"%s\"", (void *)kd, out);

	capture_begin();
	kd = kvm_open("/nonexistent", opt_core, NULL, O_RDONLY, "kvmsun");
	capture_end(out, sizeof(out));
	check(kd == NULL && strncmp(out, "kvmsun: ", 8) == 0 && strstr(out, "/nonexistent") != NULL, "kvm_open of a missing namelist prints \"errstr: message\"",
	      "returned %p, stderr \"%s\"", (void *)kd, out);
}

static void check_iteration(kvm_t *kd)
{
	static int first[MAXPROCS], second[MAXPROCS];
	int extra_ok;
	int n = walk(kd, first, MAXPROCS, &extra_ok);
	check(n > 0 && n <= MAXPROCS, "kvm_nextproc gives processes", "gave %d", n);
	if (extra_ok)
		check(1, "kvm_nextproc gives only the guest's processes, pid 0 and kernel threads", "");

	int duplicates = 0;
	for (int i = 0; i < n && i < MAXPROCS; i++) {
		for (int j = i + 1; j < n && j < MAXPROCS; j++) {
			if (first[i] == first[j]) {
				check(0, "kvm_nextproc gives each process once", "pid %d twice (at %d and %d)", first[i], i, j);
				duplicates++;
			}
		}
	}
	if (duplicates == 0)
		check(1, "kvm_nextproc gives each process once", "");

	int missing = 0;
	for (size_t t = 0; t < truth_nprocs; t++) {
		int found = 0;
		for (int i = 0; i < n && !found; i++)
			found = first[i] == truth_procs[t].pid;
		if (!found) {
			check(0, "kvm_nextproc gives every process of the guest", "pid %d (%s) is missing", truth_procs[t].pid, truth_procs[t].comm);
			missing++;
		}
	}
	if (missing == 0)
		check(1, "kvm_nextproc gives every process of the guest", "");

	struct proc *p = kvm_nextproc(kd);
	check(p == NULL, "kvm_nextproc stays at NULL after the end", "gave pid %d", p ? p->p_pid : 0);

	int r = kvm_setproc(kd);
	check(r == 0, "kvm_setproc returns 0", "returned %d", r);
	int m = walk(kd, second, MAXPROCS, &extra_ok);
	int same = m == n;
	for (int i = 0; same && i < n && i < MAXPROCS; i++)
		same = first[i] == second[i];
	check(same, "after kvm_setproc, kvm_nextproc gives the same processes in the same order", "%d processes, then %d", n, m);

	/* illumos: kvm_getproc rewinds and scans, so kvm_nextproc goes on after the process found. */
	if (n >= 3) {
		p = kvm_getproc(kd, first[1]);
		struct proc *next = p != NULL ? kvm_nextproc(kd) : NULL;
		check(p != NULL && next != NULL && next->p_pid == first[2], "kvm_nextproc continues after the process kvm_getproc found",
		      "kvm_getproc(%d) %s, then kvm_nextproc gave %d (expected %d)", first[1], p ? "found it" : "returned NULL", next ? next->p_pid : -1, first[2]);
	}
}

static void check_getproc(kvm_t *kd)
{
	struct proc *p = kvm_getproc(kd, 1);
	check(p != NULL && p->p_pid == 1 && p->p_ppid == 0, "kvm_getproc(1) finds init with parent 0", "returned %p (pid %d, ppid %d)", (void *)p,
	      p ? p->p_pid : -1, p ? p->p_ppid : -1);
	errno = 0;
	p = kvm_getproc(kd, 999999);
	check(p == NULL, "kvm_getproc of a missing pid returns NULL", "returned pid %d", p ? p->p_pid : -1);

	/* Every process of the truth: ids as /proc showed them. */
	int bad = 0;
	for (size_t i = 0; i < truth_nprocs; i++) {
		const struct truth_proc *t = &truth_procs[i];
		p = kvm_getproc(kd, t->pid);
		if (p == NULL || p->p_pid != t->pid || p->p_ppid != t->ppid || p->p_ruid != t->ruid || p->p_uid != t->euid ||
		    ((p->p_flag & PF_KTHREAD) != 0) != (t->kthread != 0)) {
			check(0, "kvm_getproc gives each process's ids as the guest's /proc", "pid %d: %s ppid %d ruid %u uid %u flags 0x%llx; guest ppid %d ruid %u uid %u kthread %d",
			      t->pid, p ? "" : "(NULL)", p ? p->p_ppid : -1, p ? p->p_ruid : 0, p ? p->p_uid : 0, p ? (unsigned long long)p->p_flag : 0ULL, t->ppid,
			      t->ruid, t->euid, t->kthread);
			bad++;
		}
	}
	if (bad == 0)
		check(1, "kvm_getproc gives each process's ids as the guest's /proc", "");
}

/* u_psargs as illumos fills it: the arguments joined by spaces, cut to PSARGSZ - 1 bytes. */
static void expected_psargs(const struct truth_proc *t, char *out)
{
	size_t n = t->cmdline_len;
	if (n > 0 && t->cmdline[n - 1] == '\0')
		n--;
	if (n > PSARGSZ - 1)
		n = PSARGSZ - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = t->cmdline[i] == '\0' ? ' ' : (char)t->cmdline[i];
	out[n] = '\0';
}

static void check_user_areas(kvm_t *kd)
{
	int compared = 0;
	for (size_t i = 0; i < truth_nprocs; i++) {
		const struct truth_proc *t = &truth_procs[i];
		char what[200];
		struct proc *p = kvm_getproc(kd, t->pid);
		if (p == NULL)
			continue;
		user_t *u = kvm_getu(kd, p);
		/*
		 * u_comm is the name as /proc shows it. A workqueue worker's name carries the workqueue of
		 * its latest work item ("kworker/1:1H-kblockd"), which may change between the guest's
		 * snapshot and the dump: only its own part (before '-' or '+') must be equal.
		 */
		size_t cmp = KVM_COMMSZ;
		if (strncmp(t->comm, "kworker/", 8) == 0)
			cmp = strcspn(t->comm, "-+");
		snprintf(what, sizeof(what), "kvm_getu(%d) returns &p->p_user with u_comm \"%s\"", t->pid, t->comm);
		if (!check(u == &p->p_user && strncmp(u->u_comm, t->comm, cmp) == 0 && (cmp == KVM_COMMSZ || strcspn(u->u_comm, "-+") == cmp), what,
		           "returned %p (p_user at %p), u_comm \"%.17s\"", (void *)u, (void *)&p->p_user, u ? u->u_comm : ""))
			continue;

		char **argv = NULL, **envv = NULL;
		int r = kvm_getcmd(kd, p, u, &argv, &envv);
		if (t->kthread) {
			snprintf(what, sizeof(what), "kvm_getcmd of kernel thread %d (%s) returns -1", t->pid, t->comm);
			check(r == -1, what, "returned %d", r);
			continue;
		}
		if (t->cmdline_len == 0)
			continue; /* a zombie or an exiting process has no arguments to compare */

		char key[32];
		snprintf(key, sizeof(key), "swapped %d", t->pid);
		int swapped = 0;
		for (size_t at = 0; !swapped && expect_next("swapped", &at) != NULL;)
			swapped = strcmp(expect_lines[at - 1], key) == 0;
		if (swapped && opt_swap == NULL) {
			/* Without the swap image, the pages the guest swapped out cannot be read: say so, do not guess. */
			snprintf(what, sizeof(what), "kvm_getcmd(%d) fails without the swap image, saying the page is swapped out", t->pid);
			check(r == -1 && u->u_argc == -1 && strstr(kvm_geterr(kd), "swapped out") != NULL, what, "returned %d, u_argc %d, kvm_geterr \"%s\"", r,
			      u->u_argc, kvm_geterr(kd));
			free(argv);
			free(envv);
			continue;
		}

		if (!user_pages && r == -1) {
			snprintf(what, sizeof(what), "kvm_getcmd(%d) fails when the dump has no user pages", t->pid);
			check(u->u_argc == -1, what, "kvm_getcmd returned -1 but u_argc is %d", u->u_argc);
			continue;
		}

		char want[PSARGSZ], why[256];
		expected_psargs(t, want);
		snprintf(what, sizeof(what), "kvm_getu(%d) u_psargs and u_argc are the guest's arguments", t->pid);
		check(strcmp(u->u_psargs, want) == 0 && u->u_argc == area_count(t->cmdline, t->cmdline_len), what,
		      "u_psargs \"%s\" (expected \"%s\"), u_argc %d (expected %d)", u->u_psargs, want, u->u_argc, area_count(t->cmdline, t->cmdline_len));

		snprintf(what, sizeof(what), "kvm_getcmd(%d) argv equals /proc/%d/cmdline", t->pid, t->pid);
		if (check(r == 0, what, "returned %d: %s", r, kvm_geterr(kd))) {
			check(vector_equals_area(argv, t->cmdline, t->cmdline_len, why, sizeof(why)), what, "%s", why);
			snprintf(what, sizeof(what), "kvm_getcmd(%d) env equals /proc/%d/environ", t->pid, t->pid);
			check(vector_equals_area(envv, t->environ, t->environ_len, why, sizeof(why)), what, "%s", why);
			compared++;
		}
		free(argv);
		free(envv);

		/* Either vector may be left out. */
		argv = NULL;
		r = kvm_getcmd(kd, p, u, &argv, NULL);
		snprintf(what, sizeof(what), "kvm_getcmd(%d) with a NULL envp gives argv alone", t->pid);
		check(r == 0 && argv != NULL && vector_equals_area(argv, t->cmdline, t->cmdline_len, why, sizeof(why)), what, "returned %d", r);
		free(argv);

		/* The argument area, read through the process's address space. */
		snprintf(key, sizeof(key), "area %d", t->pid);
		const char *area = expect_str(key);
		unsigned long long as = 0, ae = 0, es = 0, ee = 0;
		if (area != NULL && sscanf(area, "%llx %llx %llx %llx", &as, &ae, &es, &ee) == 4) {
			snprintf(what, sizeof(what), "kvm_getu(%d) u_arg_start..u_env_end are /proc/%d/stat's", t->pid, t->pid);
			check(u->u_arg_start == as && u->u_arg_end == ae && u->u_env_start == es && u->u_env_end == ee, what,
			      "0x%llx 0x%llx 0x%llx 0x%llx; guest 0x%llx 0x%llx 0x%llx 0x%llx", (unsigned long long)u->u_arg_start,
			      (unsigned long long)u->u_arg_end, (unsigned long long)u->u_env_start, (unsigned long long)u->u_env_end, as, ae, es, ee);
		}
		size_t len = (size_t)(u->u_arg_end - u->u_arg_start);
		if (len > 0 && len < (1u << 20)) {
			unsigned char *buf = malloc(len);
			ssize_t got = kvm_uread(kd, (uintptr_t)u->u_arg_start, buf, len);
			snprintf(what, sizeof(what), "kvm_uread(%d) of u_arg_start..u_arg_end equals /proc/%d/cmdline", t->pid, t->pid);
			check(got == (ssize_t)len && len == t->cmdline_len && memcmp(buf, t->cmdline, len) == 0, what, "read %zd of %zu bytes (guest %zu): %s", got,
			      len, t->cmdline_len, got < 0 ? kvm_geterr(kd) : "bytes differ");
			free(buf);
		}
	}
	check(compared >= (user_pages ? 8 : 0), "kvm_getcmd compared the guest's user processes", "only %d compared", compared);

	/* kvm_uread of an address the current process does not map. */
	struct proc *p = kvm_getproc(kd, 1);
	unsigned char b[8];
	ssize_t r = p != NULL ? kvm_uread(kd, 0, b, sizeof(b)) : 0;
	check(p != NULL && r == -1, "kvm_uread of user address 0 returns -1", "returned %zd", r);
}

/* kvm_kread stops at the first unreadable page with what it read; kvm_read gives -1. */
static void check_kread(kvm_t *kd)
{
	unsigned long hole = find_unreadable_after_readable(kd);
	if (!check(hole != 0, "a readable kernel page followed by an unreadable one is found near _end", "none found"))
		return;
	unsigned char a[32], b[16];
	memset(a, 0, sizeof(a));
	ssize_t k = kvm_kread(kd, hole - 16, a, sizeof(a));
	ssize_t r = kvm_read(kd, hole - 16, b, sizeof(b));
	check(k == 16 && r == 16 && memcmp(a, b, 16) == 0, "kvm_kread across the boundary returns the 16 bytes before it",
	      "kvm_kread returned %zd, kvm_read of the 16 bytes %zd", k, r);
	r = kvm_read(kd, hole - 16, a, sizeof(a));
	check(r == -1, "kvm_read across the same boundary returns -1", "returned %zd", r);
	k = kvm_kread(kd, hole, a, 8);
	check(k == -1, "kvm_kread of the unreadable page alone returns -1", "returned %zd", k);
	k = kvm_kread(kd, hole, a, 0);
	check(k == 0, "kvm_kread of 0 bytes returns 0", "returned %zd", k);
}

int main(int argc, char **argv)
{
	ktest_options(argc, argv);
	expect_load();
	truth_load_procs();
	user_pages = (int)expect_u64("user_pages");

	check_open_errors();
	kvm_t *kd = kvm_open(opt_namelist, opt_core, opt_swap, O_RDONLY, "kvm_sun");
	if (kd == NULL)
		bail("kvm_open of the dump", "returned NULL (see stderr)");
	check_iteration(kd);
	check_getproc(kd);
	check_user_areas(kd);
	check_kread(kd);
	int c = kvm_close(kd);
	check(c == 0, "kvm_close returns 0", "returned %d", c);
	return ktest_done();
}
