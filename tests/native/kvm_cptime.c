/*
 * kvm_cptime.c - kvm_getcptime and struct pcpu's pc_cp_time against the guest's /proc/stat.
 *
 *   kvm_cptime -M core [-N namelist] -E expect
 *
 * kvm_getcptime (FreeBSD: the sum of every CPU's pc_cp_time on a dump):
 *   - kvm_getcptime(NULL, NULL) returns 0 (libkvm-api.md 5.5-17);
 *   - on the dump it returns 0 and CPUSTATES non-negative tick counts (kvm.h: USER_HZ ticks, as
 *     /proc/stat's cpu line: user, nice, system, irq + softirq, idle + iowait), with some idle time,
 *     no more time in all than the CPUs had since boot, and each count between the guest's last
 *     /proc/stat before the stop (truth "procStatAtStop", the "cptime_at_stop" line) and what the
 *     CPUs could add in the ~0.5 s before the host stopped them;
 *   - it is the sum of kvm_getpcpu's pc_cp_time over the online CPUs up to rounding: FreeBSD's is the
 *     exact sum; ours, like /proc/stat's cpu line, adds the CPUs' nanoseconds and truncates once, so
 *     it may exceed the sum of the per-CPU counts (each truncated on its own, idle and intr from two
 *     counters each) by up to 2 ticks per CPU.
 */
#include "ktest.h"

static void check_cptime(kvm_t *kd)
{
	check(kvm_getcptime(NULL, NULL) == 0, "5.5-17 kvm_getcptime(NULL, NULL) returns 0", "did not");

	long cp[CPUSTATES];
	for (int i = 0; i < CPUSTATES; i++)
		cp[i] = -12345;
	int r = kvm_getcptime(kd, cp);
	if (!check(r == 0, "kvm_getcptime returns 0", "returned %d: %s", r, kvm_geterr(kd)))
		return;
	long total = 0;
	int negative = 0;
	for (int i = 0; i < CPUSTATES; i++) {
		total += cp[i];
		negative |= cp[i] < 0;
	}
	check(!negative && cp[CP_IDLE] > 0, "kvm_getcptime fills CPUSTATES non-negative counts with some idle time", "user %ld nice %ld sys %ld intr %ld idle %ld",
	      cp[CP_USER], cp[CP_NICE], cp[CP_SYS], cp[CP_INTR], cp[CP_IDLE]);

	int cpus = (int)expect_u64("cpus");
	const char *up = expect_str("uptime");
	double uptime = up != NULL ? strtod(up, NULL) : 0;
	/* The dump was taken within seconds of the guest's uptime reading. */
	check(uptime > 0 && (double)total <= (uptime + 10.0) * cpus * 100.0, "kvm_getcptime's total is no more than the CPUs' time since boot",
	      "total %ld ticks, %d CPUs up %.2f s", total, cpus, uptime);

	long sum[CPUSTATES] = {0};
	int got = 0;
	for (int cpu = 0; cpu < kvm_getmaxcpu(kd); cpu++) {
		struct pcpu *pc = kvm_getpcpu(kd, cpu);
		if (pc == NULL || pc == (void *)-1)
			continue;
		for (int i = 0; i < CPUSTATES; i++)
			sum[i] += pc->pc_cp_time[i];
		got++;
		char what[96];
		snprintf(what, sizeof(what), "kvm_getpcpu(%d) pc_cp_time has some idle time", cpu);
		check(pc->pc_cp_time[CP_IDLE] > 0, what, "user %ld nice %ld sys %ld intr %ld idle %ld", pc->pc_cp_time[CP_USER], pc->pc_cp_time[CP_NICE],
		      pc->pc_cp_time[CP_SYS], pc->pc_cp_time[CP_INTR], pc->pc_cp_time[CP_IDLE]);
		free(pc);
	}
	int close_enough = got == cpus;
	for (int i = 0; i < CPUSTATES; i++)
		close_enough = close_enough && cp[i] >= sum[i] && cp[i] - sum[i] <= 2L * cpus;
	check(close_enough, "kvm_getcptime is the sum of every CPU's pc_cp_time (to the tick, per CPU and counter)",
	      "%d CPUs; sums %ld %ld %ld %ld %ld, kvm_getcptime %ld %ld %ld %ld %ld", got, sum[0], sum[1], sum[2], sum[3], sum[4], cp[0], cp[1], cp[2], cp[3], cp[4]);

	const char *at_stop = expect_str("cptime_at_stop");
	long guest[CPUSTATES];
	if (at_stop == NULL || sscanf(at_stop, "%ld %ld %ld %ld %ld", &guest[0], &guest[1], &guest[2], &guest[3], &guest[4]) != CPUSTATES) {
		skip("kvm_getcptime lies between the guest's last /proc/stat and the stop", "the truth has no procStatAtStop (an older lab)");
		return;
	}
	/*
	 * The guest printed /proc/stat at most ~100 ms before the stop (10 ticks per CPU); allow 50 per
	 * CPU, and 2 below for idle (an idle period in progress is measured to the timekeeper's last
	 * update, a tick older than the guest's read, in idle and in iowait).
	 */
	int within = 1;
	for (int i = 0; i < CPUSTATES; i++)
		within = within && cp[i] >= guest[i] - (i == CP_IDLE ? 2 : 0) && cp[i] <= guest[i] + 50L * cpus;
	check(within, "kvm_getcptime lies between the guest's last /proc/stat and the stop", "ours %ld %ld %ld %ld %ld, guest %ld %ld %ld %ld %ld", cp[0], cp[1], cp[2],
	      cp[3], cp[4], guest[0], guest[1], guest[2], guest[3], guest[4]);
}

int main(int argc, char **argv)
{
	ktest_options(argc, argv);
	expect_load();
	char errbuf[_POSIX2_LINE_MAX] = "";
	kvm_t *kd = kvm_openfiles(opt_namelist, opt_core, NULL, O_RDONLY, errbuf);
	if (kd == NULL)
		bail("kvm_openfiles of the dump", "%s", errbuf);
	check_cptime(kd);
	kvm_close(kd);
	return ktest_done();
}
