/*
 * kvmlab.c - the guest-side helper of the dump lab (scripts/make-test-dumps.sh).
 *
 * It is built on the host with `gcc -static -O2 -pthread` (aarch64-linux-gnu-gcc or
 * i686-linux-gnu-gcc for the arm64 and i386 guests) and runs inside a tiny busybox
 * initramfs under QEMU.  One binary plays every part:
 *
 *   kvmlab workload ROLESFILE   start the known workload processes, write
 *                               "role pid" lines to ROLESFILE, return.
 *   kvmlab collect OPTIONS      wait for the workload to settle, push chosen
 *                               argv/env pages out to swap, record the ground
 *                               truth from /proc into a directory, write it as
 *                               a tar stream to a raw disk, print the ready
 *                               line on the console and then, forever, print
 *                               a "KVMTEST-LOADAVG" line every ~100 ms (so it
 *                               is still there in the dump, and the host knows
 *                               the load average and the cpu lines of /proc/stat
 *                               at the moment it stops the VM).
 *
 * The workload processes are this same binary, exec'ed through symlinks
 * named /bin/kvmtest-<role>.  We dispatch on the path given to execve
 * (AT_EXECFN), not on argv[0], so that argv can be anything at all
 * (empty strings, invalid UTF-8), and so that the kernel's `comm` (the
 * basename of that path) is distinctive too.
 *
 * Why C and not busybox sh: the shell cannot pass invalid UTF-8 or exact
 * environments reliably, cannot call process_madvise/pidfd_open, and would
 * fork short-lived processes while the truth is being recorded.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Syscall numbers and constants, spelled out so that old headers do not matter (pidfd_open
 * and process_madvise have the same numbers on every architecture: the unified table). */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/* The page size, from sysconf(_SC_PAGESIZE) (= getconf PAGESIZE) at start. */
static unsigned long PAGE = 4096;
#define KVMLAB_BIN "/bin/kvmlab"

/* Identity of the non-root workload process. */
#define NONROOT_UID 1234
#define NONROOT_GID 5678
#define NONROOT_SUPP_GID 4242

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kvmlab: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (errno %d: %s)\n", errno, strerror(errno));
    va_end(ap);
    exit(1);
}

static void msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kvmlab: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void pause_forever(void)
{
    for (;;)
        pause();
}

/* ------------------------------------------------------------------ */
/* Workload roles: each runs in its own exec'ed process.               */
/* ------------------------------------------------------------------ */

static void role_pause(void) { pause_forever(); }

/* Non-root: drop to uid 1234 / gid 5678 (all of real, effective, saved, fs). */
static void role_nonroot(void)
{
    gid_t groups[2] = {NONROOT_GID, NONROOT_SUPP_GID};
    if (setgroups(2, groups) != 0) die("setgroups");
    if (setresgid(NONROOT_GID, NONROOT_GID, NONROOT_GID) != 0) die("setresgid");
    if (setresuid(NONROOT_UID, NONROOT_UID, NONROOT_UID) != 0) die("setresuid");
    pause_forever();
}

/* Parent/child pair: the child renames itself so both are easy to tell apart. */
static void role_parent(void)
{
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        prctl(PR_SET_NAME, "kvmtest-child", 0, 0, 0);
    }
    pause_forever();
}

static void *thread_main(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "kvmtest-thr%ld", (long)(intptr_t)arg);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    pause_forever();
    return NULL;
}

/* Multi-threaded: main thread + 2 more = 3 threads. */
static void role_threads(void)
{
    for (long i = 1; i <= 2; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_main, (void *)(intptr_t)i) != 0) die("pthread_create");
    }
    pause_forever();
}

static void role_nice(void)
{
    if (setpriority(PRIO_PROCESS, 0, 5) != 0) die("setpriority");
    pause_forever();
}

/* The serial console's device: the first name in /sys/class/tty/console/active
 * (ttyS0 on x86, ttyAMA0 on arm64's virt machine), /dev/ttyS0 if that cannot be read. */
static void console_tty(char *path, size_t size)
{
    char name[64] = "";
    FILE *f = fopen("/sys/class/tty/console/active", "r");
    if (f) {
        if (fscanf(f, "%63s", name) != 1) name[0] = 0;
        fclose(f);
    }
    snprintf(path, size, "/dev/%s", name[0] ? name : "ttyS0");
}

/* Session leader with the serial console (/dev/ttyS0, /dev/ttyAMA0) as controlling
 * terminal. Failure is not fatal: the host records tty=null when ttyNr stays 0. */
static void role_tty(void)
{
    char tty[80];
    console_tty(tty, sizeof tty);
    if (setsid() < 0) msg("tty role: setsid failed: %s", strerror(errno));
    int fd = open(tty, O_RDWR | O_NOCTTY);
    if (fd < 0) {
        msg("tty role: open %s failed: %s", tty, strerror(errno));
    } else if (ioctl(fd, TIOCSCTTY, 0) != 0) {
        msg("tty role: TIOCSCTTY failed: %s", strerror(errno));
    }
    pause_forever();
}

/* Put fd `want` on `fd` (dup2 + close) so the fd numbers are exactly known. */
static void move_fd(int fd, int want)
{
    if (fd < 0) die("open for fd %d", want);
    if (fd != want) {
        if (dup2(fd, want) < 0) die("dup2 %d", want);
        close(fd);
    }
}

/* A process holding known files open on known fds with known positions. */
static void role_files(void)
{
    /* The files are created by `kvmlab workload` before this process starts. */
    int fd = open("/tmp/kvmtest-a.txt", O_RDONLY);
    move_fd(fd, 3);
    char buf[7];
    if (read(3, buf, sizeof buf) != (ssize_t)sizeof buf) die("read a.txt"); /* pos 7 */

    fd = open("/tmp/kvmtest-b.txt", O_WRONLY | O_APPEND);
    move_fd(fd, 4);
    static const char more[] = "appended by kvmtest-files\n";
    if (write(4, more, sizeof more - 1) != (ssize_t)(sizeof more - 1)) die("write b.txt");

    fd = open("/tmp", O_RDONLY | O_DIRECTORY);
    move_fd(fd, 5);

    int p[2];
    if (pipe(p) != 0) die("pipe");
    /* read end on 7, write end on 8 */
    int r = dup(p[0]), w = dup(p[1]);
    close(p[0]);
    close(p[1]);
    move_fd(r, 7);
    move_fd(w, 8);

    fd = open("/dev/null", O_RDWR);
    move_fd(fd, 9);
    pause_forever();
}

/* CPU-busy spinner: lifts the load average. */
static void role_spin(void)
{
    volatile unsigned long x = 0;
    for (;;)
        x++;
}

struct role {
    const char *exe;  /* basename of /bin/<exe> symlink; also becomes comm */
    const char *name; /* role name used in truth.json */
    void (*fn)(void);
};

static const struct role roles[] = {
    {"kvmtest-argv", "argv", role_pause},
    {"kvmtest-long", "longArgv", role_pause},
    {"kvmtest-env", "bigEnv", role_pause},
    {"kvmtest-uid", "nonRoot", role_nonroot},
    {"kvmtest-parent", "parent", role_parent},
    {"kvmtest-thread", "threaded", role_threads},
    {"kvmtest-nice", "niced", role_nice},
    {"kvmtest-tty", "tty", role_tty},
    {"kvmtest-files", "files", role_files},
    {"kvmtest-spin", "spinner", role_spin},
};
#define NROLES (sizeof roles / sizeof roles[0])

/* ------------------------------------------------------------------ */
/* `kvmlab workload`: start every role with an exactly known argv/env. */
/* ------------------------------------------------------------------ */

#define MAXARGS 80

struct spawn {
    const char *exe;
    char *argv[MAXARGS];
    char *envp[MAXARGS];
};

static char *xstrdup(const char *s)
{
    char *r = strdup(s);
    if (!r) die("strdup");
    return r;
}

static void small_env(struct spawn *s, const char *role)
{
    char buf[128];
    snprintf(buf, sizeof buf, "KVMTEST_ROLE=%s", role);
    s->envp[0] = xstrdup(buf);
    s->envp[1] = xstrdup("PATH=/bin");
    s->envp[2] = NULL;
}

static pid_t do_spawn(struct spawn *s)
{
    char path[256];
    snprintf(path, sizeof path, "/bin/%s", s->exe);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        /* Known stdio for every role: stdin /dev/null, stdout+stderr the console. */
        int n = open("/dev/null", O_RDWR);
        int c = open("/dev/console", O_WRONLY | O_NOCTTY);
        if (n >= 0) dup2(n, 0);
        if (c >= 0) {
            dup2(c, 1);
            dup2(c, 2);
        }
        for (int fd = 3; fd < 64; fd++)
            close(fd);
        execve(path, s->argv, s->envp);
        _exit(127);
    }
    return pid;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open %s", path);
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0) die("write %s", path);
        p += n;
        len -= (size_t)n;
    }
    close(fd);
}

static void write_str(const char *path, const char *s) { write_file(path, s, strlen(s)); }

static int cmd_workload(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: kvmlab workload ROLESFILE\n");
        return 2;
    }
    const char *rolesfile = argv[2];

    /* One symlink per role: its basename becomes the process's comm. */
    for (size_t i = 0; i < NROLES; i++) {
        char path[256];
        snprintf(path, sizeof path, "/bin/%s", roles[i].exe);
        if (symlink(KVMLAB_BIN, path) != 0 && errno != EEXIST) die("symlink %s", path);
    }

    /* Files the `files` role opens. */
    write_str("/tmp/kvmtest-a.txt", "kvmtest file A: read-only, position 7\n");
    write_str("/tmp/kvmtest-b.txt", "kvmtest file B: write-only append\n");

    /* A marker in the kernel log with a random token (the host checks dmesg for it). */
    unsigned char rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) die("getrandom");
    char marker[64];
    snprintf(marker, sizeof marker, "KVMTEST-MARKER %02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
    /* The trailing newline matters: printk keeps a record without one open (a
     * possible continuation) and neither dmesg nor the console sees it. */
    char line[80];
    snprintf(line, sizeof line, "%s\n", marker);
    int k = open("/dev/kmsg", O_WRONLY);
    if (k < 0 || write(k, line, strlen(line)) < 0) die("write /dev/kmsg");
    close(k);
    write_str("/run/kmsg-marker", marker);

    FILE *rf = fopen(rolesfile, "w");
    if (!rf) die("open %s", rolesfile);

    for (size_t i = 0; i < NROLES; i++) {
        struct spawn s;
        memset(&s, 0, sizeof s);
        s.exe = roles[i].exe;
        const char *name = roles[i].name;
        int a = 0;
        if (!strcmp(name, "argv")) {
            /* Spaces, an EMPTY argument, UTF-8, and bytes that are not valid UTF-8. */
            s.argv[a++] = xstrdup("kvmtest-argv");
            s.argv[a++] = xstrdup("hello world");
            s.argv[a++] = xstrdup("");
            s.argv[a++] = xstrdup("\xc3\xbc" "n" "\xc3\xaf" "c" "\xc3\xb6" "d" "\xc3\xa9" "-\xe2\x9c\x93"); /* ünïcödé-✓ */
            s.argv[a++] = xstrdup("bad-utf8:\xff\xfe\xc3(\x80-end");
            s.argv[a++] = xstrdup("--opt=with = equals");
            s.argv[a++] = xstrdup("  leading and trailing spaces  ");
            small_env(&s, name);
        } else if (!strcmp(name, "longArgv")) {
            /* One 6000-byte argument so argv crosses at least one page boundary.
             * Every 32-byte chunk names its own offset so any page is recognisable. */
            static char big[6001];
            for (int off = 0; off < 6000; off += 32)
                snprintf(big + off, sizeof big - off, "kvmtest-long-arg-offset-%06d..", off);
            big[6000] = 0;
            s.argv[a++] = xstrdup("kvmtest-long");
            s.argv[a++] = big;
            s.argv[a++] = xstrdup("after-the-long-one");
            small_env(&s, name);
        } else if (!strcmp(name, "bigEnv")) {
            /* 64 variables, exactly these and nothing else (clean environment). */
            s.argv[a++] = xstrdup("kvmtest-env");
            s.argv[a++] = xstrdup("big-environment");
            for (int v = 1; v <= 64; v++) {
                char buf[200];
                snprintf(buf, sizeof buf,
                         "KVMTEST_VAR_%02d=value-%02d-abcdefghijklmnopqrstuvwxyz-0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ-%02d",
                         v, v, v);
                s.envp[v - 1] = xstrdup(buf);
            }
            s.envp[64] = NULL;
        } else {
            s.argv[a++] = xstrdup(s.exe);
            if (!strcmp(name, "nonRoot")) {
                s.argv[a++] = xstrdup("--uid=1234");
                s.argv[a++] = xstrdup("--gid=5678");
            } else {
                char buf[64];
                snprintf(buf, sizeof buf, "--role=%s", name);
                s.argv[a++] = xstrdup(buf);
            }
            small_env(&s, name);
        }
        s.argv[a] = NULL;
        pid_t pid = do_spawn(&s);
        fprintf(rf, "%s %d\n", name, (int)pid);
    }
    fclose(rf);
    return 0;
}

/* ------------------------------------------------------------------ */
/* `kvmlab collect`: memory pressure + ground truth.                    */
/* ------------------------------------------------------------------ */

static char truthdir[256] = "/truth";
static void read_small(const char *path, char *buf, size_t size);

/* Read a whole file (works for /proc files whose st_size is 0). */
static char *slurp(const char *path, size_t *lenp)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) die("malloc");
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            if (!buf) die("realloc");
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR) continue;
            /* e.g. ESRCH for an exited process: keep what we have */
            break;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    if (lenp) *lenp = len;
    return buf;
}

static void mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
    mkdir(tmp, 0755);
}

/* Copy a /proc file byte for byte into the truth dir under `rel`. */
static int copy_to_truth(const char *src, const char *rel)
{
    size_t len;
    char *data = slurp(src, &len);
    if (!data) return -1;
    char dst[1024];
    snprintf(dst, sizeof dst, "%s/%s", truthdir, rel);
    write_file(dst, data, len);
    free(data);
    return 0;
}

static void truth_write(const char *rel, const char *s)
{
    char dst[1024];
    snprintf(dst, sizeof dst, "%s/%s", truthdir, rel);
    write_str(dst, s);
}

/* Parse /proc/PID/stat: fields after the comm, which may contain spaces and ')'. */
static int stat_fields(int pid, unsigned long long *out, int first, int last)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    char *s = slurp(path, NULL);
    if (!s) return -1;
    char *p = strrchr(s, ')');
    if (!p) {
        free(s);
        return -1;
    }
    p += 2; /* now at field 3 (state) */
    int field = 3;
    while (*p && field <= last) {
        char *end = strchr(p, ' ');
        if (field >= first) out[field - first] = strtoull(p, NULL, 10);
        if (!end) break;
        p = end + 1;
        field++;
    }
    free(s);
    return field >= last ? 0 : -1;
}

static int read_pagemap(int pid, unsigned long va, uint64_t *entry)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = pread(fd, entry, 8, (off_t)(va / PAGE) * 8);
    close(fd);
    return n == 8 ? 0 : -1;
}

struct target {
    char role[64];
    int pid;
    unsigned long arg_start, arg_end, env_start, env_end;
};

#define MAXTARGETS 8
static struct target targets[MAXTARGETS];
static int ntargets;

/* Ask the kernel to reclaim the pages holding argv+env of process `t`. */
static int pageout(struct target *t)
{
    unsigned long lo = t->arg_start & ~(PAGE - 1);
    unsigned long hi = (t->env_end + PAGE - 1) & ~(PAGE - 1);
    int pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
    if (pidfd < 0) {
        msg("pidfd_open(%d) failed: %s", t->pid, strerror(errno));
        return -1;
    }
    struct iovec iov = {(void *)lo, hi - lo};
    long r = syscall(SYS_process_madvise, pidfd, &iov, 1, MADV_PAGEOUT, 0);
    close(pidfd);
    if (r < 0) {
        msg("process_madvise(%d, MADV_PAGEOUT) failed: %s", t->pid, strerror(errno));
        return -1;
    }
    return 0;
}

static int all_swapped(struct target *t)
{
    for (unsigned long va = t->arg_start & ~(PAGE - 1); va < t->env_end; va += PAGE) {
        uint64_t e;
        if (read_pagemap(t->pid, va, &e) != 0) return 0;
        if (!((e >> 62) & 1)) return 0;
    }
    return 1;
}

static long meminfo_kb(const char *key)
{
    char *s = slurp("/proc/meminfo", NULL);
    if (!s) return -1;
    long v = -1;
    char *p = strstr(s, key);
    if (p) v = strtol(p + strlen(key) + 1, NULL, 10);
    free(s);
    return v;
}

static void memory_pressure(const char *roles_csv)
{
    /* Pages still sitting in per-CPU LRU caches cannot be reclaimed; writing
     * compact_memory makes the kernel drain those caches on every CPU. */
    for (int round = 0; round < 20; round++) {
        int fd = open("/proc/sys/vm/compact_memory", O_WRONLY);
        if (fd >= 0) {
            if (write(fd, "1", 1) < 0) { /* not fatal */ }
            close(fd);
        }
        int done = 1;
        for (int i = 0; i < ntargets; i++) {
            if (all_swapped(&targets[i])) continue;
            done = 0;
            pageout(&targets[i]);
        }
        if (done) break;
        usleep(500000);
    }
    /* Let the swap writes reach the (virtio) disk before the host stops the VM. */
    sync();
    for (int i = 0; i < 100 && meminfo_kb("Writeback:") != 0; i++)
        usleep(100000);
    (void)roles_csv;
}

/* Minimal tar writer would be possible, but busybox tar is already there:
 * run it in a child and wait, so no extra process survives into the dump. */
static int run_wait(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int is_pid_dir(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* Record stat/status/task list (and fds for workload processes) of every pid. */
static void snapshot_processes(const char *rolesfile)
{
    char *roles_txt = slurp(rolesfile, NULL);
    DIR *d = opendir("/proc");
    if (!d) die("opendir /proc");
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_pid_dir(de->d_name)) continue;
        char src[1024], rel[1024];
        snprintf(rel, sizeof rel, "proc/%s", de->d_name);
        char full[2048];
        snprintf(full, sizeof full, "%s/%s", truthdir, rel);
        mkdirs(full);
        const char *files[] = {"stat", "status"};
        for (int i = 0; i < 2; i++) {
            snprintf(src, sizeof src, "/proc/%s/%s", de->d_name, files[i]);
            snprintf(rel, sizeof rel, "proc/%s/%s", de->d_name, files[i]);
            copy_to_truth(src, rel);
        }
        /* cmdline/environ were taken before memory pressure (reading them would
         * fault swapped pages back in); take them now only for new pids. */
        const char *mem[] = {"cmdline", "environ"};
        for (int i = 0; i < 2; i++) {
            snprintf(rel, sizeof rel, "%s/proc/%s/%s", truthdir, de->d_name, mem[i]);
            if (access(rel, F_OK) == 0) continue;
            snprintf(src, sizeof src, "/proc/%s/%s", de->d_name, mem[i]);
            snprintf(rel, sizeof rel, "proc/%s/%s", de->d_name, mem[i]);
            copy_to_truth(src, rel);
        }
        /* thread list */
        snprintf(src, sizeof src, "/proc/%s/task", de->d_name);
        DIR *td = opendir(src);
        if (td) {
            char buf[8192] = "";
            size_t used = 0;
            struct dirent *te;
            while ((te = readdir(td))) {
                if (!is_pid_dir(te->d_name)) continue;
                used += (size_t)snprintf(buf + used, sizeof buf - used, "%s\n", te->d_name);
                if (used >= sizeof buf - 16) break;
            }
            closedir(td);
            snprintf(rel, sizeof rel, "proc/%s/tasks", de->d_name);
            truth_write(rel, buf);
        }
        /* fd links and fdinfo: for every process (cheap; kernel threads have none). */
        snprintf(src, sizeof src, "/proc/%s/fd", de->d_name);
        DIR *fdd = opendir(src);
        if (fdd) {
            char links[16384] = "";
            size_t used = 0;
            struct dirent *fe;
            while ((fe = readdir(fdd))) {
                if (!is_pid_dir(fe->d_name)) continue;
                char lp[1024], target[PATH_MAX];
                snprintf(lp, sizeof lp, "/proc/%s/fd/%s", de->d_name, fe->d_name);
                ssize_t n = readlink(lp, target, sizeof target - 1);
                if (n < 0) continue;
                target[n] = 0;
                used += (size_t)snprintf(links + used, sizeof links - used, "%s\t%s\n", fe->d_name, target);
                char fdir[1024];
                snprintf(fdir, sizeof fdir, "%s/proc/%s/fdinfo", truthdir, de->d_name);
                mkdirs(fdir);
                snprintf(src, sizeof src, "/proc/%s/fdinfo/%s", de->d_name, fe->d_name);
                snprintf(rel, sizeof rel, "proc/%s/fdinfo/%s", de->d_name, fe->d_name);
                copy_to_truth(src, rel);
                if (used >= sizeof links - 400) break;
            }
            closedir(fdd);
            snprintf(rel, sizeof rel, "proc/%s/fds", de->d_name);
            truth_write(rel, links);
        }
    }
    closedir(d);
    free(roles_txt);
}

/* Before memory pressure: cmdline + environ of every pid, raw bytes. */
static void snapshot_args(void)
{
    DIR *d = opendir("/proc");
    if (!d) die("opendir /proc");
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_pid_dir(de->d_name)) continue;
        char src[1024], rel[1024], full[1024];
        snprintf(full, sizeof full, "%s/proc/%s", truthdir, de->d_name);
        mkdirs(full);
        const char *mem[] = {"cmdline", "environ"};
        for (int i = 0; i < 2; i++) {
            snprintf(src, sizeof src, "/proc/%s/%s", de->d_name, mem[i]);
            snprintf(rel, sizeof rel, "proc/%s/%s", de->d_name, mem[i]);
            copy_to_truth(src, rel);
        }
    }
    closedir(d);
}

/*
 * paging.txt: the page size (sysconf(_SC_PAGESIZE), what `getconf PAGESIZE` prints) and,
 * on 64-bit guests, a probe of the user address space: ask mmap for a page at 1 << 50.
 * Only a kernel with a larger user address space hands out addresses at or above
 * 1 << 47 (x86-64: 5-level paging, "levels=5") or 1 << 48 (arm64: 52-bit VA);
 * "mmapbits" is the bit length of the address mmap returned.  "levels" is written on
 * x86-64 only, where the probe decides between 4- and 5-level paging.
 */
static void probe_paging(void)
{
    char buf[256];
    int used = snprintf(buf, sizeof buf, "pagesize=%lu\nptrbits=%d\n", PAGE, (int)(8 * sizeof(void *)));
#if UINTPTR_MAX > 0xffffffffu
    void *hint = (void *)(1UL << 50);
    void *p = mmap(hint, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        snprintf(buf + used, sizeof buf - used, "%smmap=failed\n",
#if defined(__x86_64__)
                 "levels=4\n"
#else
                 ""
#endif
        );
    } else {
        unsigned long a = (unsigned long)p;
        int bits = 0;
        while (bits < 64 && (a >> bits) != 0)
            bits++;
#if defined(__x86_64__)
        snprintf(buf + used, sizeof buf - used, "levels=%d\nmmap=0x%lx\nmmapbits=%d\n", a >= (1UL << 47) ? 5 : 4, a,
                 bits);
#else
        snprintf(buf + used, sizeof buf - used, "mmap=0x%lx\nmmapbits=%d\n", a, bits);
#endif
        munmap(p, PAGE);
    }
#else
    (void)used;
#endif
    truth_write("paging.txt", buf);
}

static void save_dmesg(void)
{
    int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
    if (size < 65536) size = 1 << 20;
    char *buf = malloc((size_t)size);
    if (!buf) die("malloc");
    int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, size);
    if (n < 0) die("klogctl");
    char dst[1024];
    snprintf(dst, sizeof dst, "%s/dmesg.raw", truthdir);
    write_file(dst, buf, (size_t)n);
    free(buf);
}

/* The PT_LOAD program headers of /proc/kcore (ELF64, or ELF32 on 32-bit kernels). */
struct kload {
    unsigned long long vaddr, paddr, memsz, offset;
};
#define MAXKLOADS 256
static struct kload kloads[MAXKLOADS];
static int nkloads;
static unsigned long long kcore_no_paddr; /* p_paddr of segments with no physical address: (elf_addr_t)-1 */

static void read_kcore_phdrs(void)
{
    nkloads = 0;
    int fd = open("/proc/kcore", O_RDONLY);
    if (fd < 0) return;
    unsigned char ident[EI_NIDENT];
    if (pread(fd, ident, sizeof ident, 0) != (ssize_t)sizeof ident || memcmp(ident, ELFMAG, SELFMAG) != 0) {
        close(fd);
        return;
    }
    if (ident[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr eh;
        kcore_no_paddr = ~0ULL;
        if (pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh && eh.e_phentsize == sizeof(Elf64_Phdr)) {
            for (int i = 0; i < eh.e_phnum && nkloads < MAXKLOADS; i++) {
                Elf64_Phdr ph;
                if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (Elf64_Off)i * sizeof ph)) != (ssize_t)sizeof ph)
                    break;
                if (ph.p_type != PT_LOAD) continue;
                kloads[nkloads++] = (struct kload){ph.p_vaddr, ph.p_paddr, ph.p_memsz, ph.p_offset};
            }
        }
    } else if (ident[EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr eh;
        kcore_no_paddr = 0xffffffffULL;
        if (pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh && eh.e_phentsize == sizeof(Elf32_Phdr)) {
            for (int i = 0; i < eh.e_phnum && nkloads < MAXKLOADS; i++) {
                Elf32_Phdr ph;
                if (pread(fd, &ph, sizeof ph, (off_t)eh.e_phoff + (off_t)i * (off_t)sizeof ph) != (ssize_t)sizeof ph)
                    break;
                if (ph.p_type != PT_LOAD) continue;
                kloads[nkloads++] = (struct kload){ph.p_vaddr, ph.p_paddr, ph.p_memsz, ph.p_offset};
            }
        }
    }
    close(fd);
}

/* The program headers of /proc/kcore: its RAM segments map the direct map
 * (vaddr - paddr = page_offset_base on x86-64, PAGE_OFFSET on i386) and its TEXT
 * segment the kernel image (gives phys_base, kimage_voffset).  Recorded as
 * "vaddr paddr memsz" lines. */
static void save_kcore_phdrs(void)
{
    char out[16384] = "";
    size_t used = 0;
    read_kcore_phdrs();
    for (int i = 0; i < nkloads && used < sizeof out - 100; i++)
        used += (size_t)snprintf(out + used, sizeof out - used, "0x%llx 0x%llx 0x%llx\n", kloads[i].vaddr,
                                 kloads[i].paddr, kloads[i].memsz);
    truth_write("kcore-phdrs.txt", out);
}

/*
 * The kernel's own VMCOREINFO note, as this guest sees it: /sys/kernel/vmcoreinfo gives
 * its physical address and size, and the /proc/kcore segment that maps that physical
 * address gives the bytes.  Written raw to vmcoreinfo.note (the ELF note: header, name
 * "VMCOREINFO", text); vmcoreinfo.txt says where it came from or why it is missing.
 * This is the guest's memory read by the guest, not the dump's note.
 */
static void save_vmcoreinfo(void)
{
    char info[256], why[512];
    unsigned long long paddr = 0;
    unsigned int size = 0;
    read_small("/sys/kernel/vmcoreinfo", info, sizeof info);
    if (sscanf(info, "%llx %x", &paddr, &size) != 2 || size == 0 || size > (1u << 20)) {
        snprintf(why, sizeof why, "error=cannot parse /sys/kernel/vmcoreinfo ('%s')\n", info);
        truth_write("vmcoreinfo.txt", why);
        return;
    }
    for (int i = 0; i < nkloads; i++) {
        struct kload *k = &kloads[i];
        if (k->paddr == kcore_no_paddr || paddr < k->paddr || paddr + size > k->paddr + k->memsz) continue;
        char *buf = malloc(size);
        if (!buf) die("malloc");
        int fd = open("/proc/kcore", O_RDONLY);
        ssize_t n = fd < 0 ? -1 : pread(fd, buf, size, (off_t)(k->offset + (paddr - k->paddr)));
        int err = errno;
        if (fd >= 0) close(fd);
        if (n == (ssize_t)size) {
            char dst[1024];
            snprintf(dst, sizeof dst, "%s/vmcoreinfo.note", truthdir);
            write_file(dst, buf, size);
            snprintf(why, sizeof why, "paddr=0x%llx\nsize=0x%x\nkcoreVaddr=0x%llx\n", paddr, size,
                     k->vaddr + (paddr - k->paddr));
        } else {
            snprintf(why, sizeof why, "error=reading /proc/kcore at 0x%llx failed (%s)\n",
                     k->offset + (paddr - k->paddr), strerror(err));
        }
        free(buf);
        truth_write("vmcoreinfo.txt", why);
        return;
    }
    snprintf(why, sizeof why, "error=no /proc/kcore segment maps physical 0x%llx+0x%x\n", paddr, size);
    truth_write("vmcoreinfo.txt", why);
}

static void save_uname(void)
{
    struct utsname u;
    if (uname(&u) != 0) die("uname");
    char buf[1024];
    snprintf(buf, sizeof buf, "sysname=%s\nnodename=%s\nrelease=%s\nversion=%s\nmachine=%s\n", u.sysname,
             u.nodename, u.release, u.version, u.machine);
    truth_write("uname.txt", buf);
}

/* Find the role pids (and the forked child of `parent`) and their argv/env ranges. */
static void load_targets(const char *rolesfile, const char *pressure_roles)
{
    FILE *f = fopen(rolesfile, "r");
    if (!f) die("open %s", rolesfile);
    char role[64];
    int pid;
    while (fscanf(f, "%63s %d", role, &pid) == 2) {
        char csv[256];
        snprintf(csv, sizeof csv, ",%s,", pressure_roles);
        char key[80];
        snprintf(key, sizeof key, ",%s,", role);
        if (!strstr(csv, key) || ntargets >= MAXTARGETS) continue;
        struct target *t = &targets[ntargets];
        snprintf(t->role, sizeof t->role, "%s", role);
        t->pid = pid;
        unsigned long long v[4];
        if (stat_fields(pid, v, 48, 51) != 0) die("stat of %s (%d)", role, pid);
        t->arg_start = v[0];
        t->arg_end = v[1];
        t->env_start = v[2];
        t->env_end = v[3];
        ntargets++;
    }
    fclose(f);
}

static void save_pagemap_records(void)
{
    char buf[65536];
    size_t used = 0;
    used += (size_t)snprintf(buf + used, sizeof buf - used, "# pid role va entry containsArgv containsEnv\n");
    for (int i = 0; i < ntargets; i++) {
        struct target *t = &targets[i];
        for (unsigned long va = t->arg_start & ~(PAGE - 1); va < t->env_end; va += PAGE) {
            uint64_t e = 0;
            if (read_pagemap(t->pid, va, &e) != 0) die("pagemap of %d", t->pid);
            int has_arg = va < t->arg_end && va + PAGE > t->arg_start;
            int has_env = va < t->env_end && va + PAGE > t->env_start;
            used += (size_t)snprintf(buf + used, sizeof buf - used, "%d %s 0x%lx 0x%016llx %d %d\n", t->pid, t->role,
                                     va, (unsigned long long)e, has_arg, has_env);
        }
    }
    truth_write("pagemap.txt", buf);
}

/* Read a small /proc file into buf (NUL-terminated, trailing newline dropped); "" on failure. */
static void read_small(const char *path, char *buf, size_t size)
{
    buf[0] = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    ssize_t n;
    do
        n = read(fd, buf, size - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0) n = 0;
    buf[n] = 0;
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
}

/*
 * The "cpu" and "cpuN" lines of /proc/stat (they come first) as " cpu=U,N,S,I,W,IRQ,SIRQ,ST,G,GN cpu0=...":
 * the label, then the ten USER_HZ counters in /proc/stat's order, comma-separated.  out is "" if
 * /proc/stat cannot be read or the lines do not fit.
 */
static void proc_stat_cpus(char *out, size_t size)
{
    static char stat[65536];
    size_t used = 0, len = 0;
    out[0] = 0;
    int fd = open("/proc/stat", O_RDONLY);
    if (fd < 0) return;
    while (used < sizeof stat - 1) {
        ssize_t n = read(fd, stat + used, sizeof stat - 1 - used);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        used += (size_t)n;
    }
    close(fd);
    stat[used] = 0;
    for (char *line = stat; *line;) {
        char *next = strchr(line, '\n');
        if (!next) break; /* a line cut by the buffer's end is not used */
        *next++ = 0;
        char *p = line + 3;
        if (strncmp(line, "cpu", 3)) break;
        while (isdigit((unsigned char)*p)) p++;
        if (*p != ' ') break;
        int w = snprintf(out + len, size - len, " %.*s=", (int)(p - line), line);
        if (w < 0 || (size_t)w >= size - len) goto too_long;
        len += (size_t)w;
        int fields = 0;
        for (char *tok = strtok(p, " "); tok; tok = strtok(NULL, " ")) {
            w = snprintf(out + len, size - len, "%s%s", fields ? "," : "", tok);
            if (w < 0 || (size_t)w >= size - len) goto too_long;
            len += (size_t)w;
            fields++;
        }
        line = next;
    }
    return;
too_long:
    out[0] = 0;
}

/*
 * After the ready line: the truth's loadavg.txt is seconds older than the moment the
 * host stops the VM, and the kernel recomputes avenrun every 5 s.  So, until the VM is
 * stopped, print /proc/loadavg, the uptime and the cpu lines of /proc/stat on the console
 * every ~100 ms; the host takes the last complete line it saw when it stopped the VM
 * (truth.json loadavgAtStop and procStatAtStop).  /proc/uptime is read first, so its
 * value is no later than the moment /proc/stat was read.
 * Never returns; the collector sleeps in nanosleep between lines, so it is in the dump.
 */
static void loadavg_ticker(void)
{
    char la[256], up[256], cpus[4096], line[4800];
    const struct timespec period = {0, 100 * 1000 * 1000};
    for (;;) {
        read_small("/proc/uptime", up, sizeof up);
        read_small("/proc/loadavg", la, sizeof la);
        proc_stat_cpus(cpus, sizeof cpus);
        char *sp = strchr(up, ' ');
        if (sp) *sp = 0;
        /* One write(2) per line, so a line is never split by our own buffering. */
        int n = snprintf(line, sizeof line, "KVMTEST-LOADAVG %s uptime=%s%s\n", la, up, cpus);
        if (n > 0 && (size_t)n < sizeof line) {
            fflush(stdout);
            ssize_t w;
            do
                w = write(STDOUT_FILENO, line, (size_t)n);
            while (w < 0 && errno == EINTR);
        }
        struct timespec left = period;
        while (nanosleep(&left, &left) < 0 && errno == EINTR) {
        }
    }
}

static int cmd_collect(int argc, char **argv)
{
    const char *rolesfile = "/run/roles", *tardev = "/dev/vdb", *pressure_roles = "";
    int settle = 35;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--roles") && i + 1 < argc) rolesfile = argv[++i];
        else if (!strcmp(argv[i], "--tar") && i + 1 < argc) tardev = argv[++i];
        else if (!strcmp(argv[i], "--settle") && i + 1 < argc) settle = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pressure") && i + 1 < argc) pressure_roles = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) snprintf(truthdir, sizeof truthdir, "%s", argv[++i]);
        else {
            fprintf(stderr, "kvmlab collect: bad argument %s\n", argv[i]);
            return 2;
        }
    }
    mkdirs(truthdir);

    /* Let the spinner lift the load average (it is sampled every 5 s). */
    msg("collect: letting the workload run for %d s", settle);
    sleep((unsigned)settle);

    load_targets(rolesfile, pressure_roles);
    snapshot_args();
    if (ntargets > 0) {
        msg("collect: paging out argv/env of %d processes", ntargets);
        memory_pressure(pressure_roles);
        int swapped = 0;
        for (int i = 0; i < ntargets; i++)
            swapped += all_swapped(&targets[i]);
        msg("collect: %d of %d processes fully swapped out", swapped, ntargets);
    }
    save_pagemap_records();

    /* The rest of the truth, as close as possible to the moment the host stops the VM. */
    probe_paging();
    save_uname();
    save_kcore_phdrs();
    save_vmcoreinfo();
    copy_to_truth(rolesfile, "roles.txt");
    copy_to_truth("/run/kmsg-marker", "kmsg-marker.txt");
    copy_to_truth("/proc/version", "version.txt");
    copy_to_truth("/proc/cmdline", "cmdline.txt");
    copy_to_truth("/proc/swaps", "swaps.txt");
    copy_to_truth("/proc/meminfo", "meminfo.txt");
    copy_to_truth("/proc/cpuinfo", "cpuinfo.txt");
    copy_to_truth("/proc/iomem", "iomem.txt");
    copy_to_truth("/proc/kallsyms", "kallsyms.txt");
    copy_to_truth("/proc/uptime", "uptime.txt");
    char self[32];
    snprintf(self, sizeof self, "%d\n", (int)getpid());
    truth_write("collector.txt", self);
    save_dmesg();
    snapshot_processes(rolesfile);
    copy_to_truth("/proc/loadavg", "loadavg.txt");

    char *tar_argv[] = {"/bin/busybox", "tar", "-c", "-f", (char *)tardev, "-C", truthdir, ".", NULL};
    if (run_wait(tar_argv) != 0) die("tar to %s failed", tardev);
    sync();
    int fd = open(tardev, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    /* The host waits for this exact line on the serial console. */
    printf("KVMTEST-READY pid=%d\n", (int)getpid());
    fflush(stdout);
    loadavg_ticker();
    return 0;
}

int main(int argc, char **argv)
{
    long ps = sysconf(_SC_PAGESIZE);
    if (ps > 0) PAGE = (unsigned long)ps;
    /* Dispatch on the path given to execve, so argv stays free-form. */
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    const char *base = execfn ? strrchr(execfn, '/') : NULL;
    base = base ? base + 1 : (execfn ? execfn : "");
    for (size_t i = 0; i < NROLES; i++)
        if (!strcmp(base, roles[i].exe)) {
            roles[i].fn();
            return 0;
        }
    if (argc >= 2 && !strcmp(argv[1], "workload")) return cmd_workload(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "collect")) return cmd_collect(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "paging")) {
        snprintf(truthdir, sizeof truthdir, "/tmp");
        probe_paging();
        return 0;
    }
    fprintf(stderr, "usage: kvmlab workload ROLESFILE | kvmlab collect [--roles F] [--tar DEV] [--settle S] "
                    "[--pressure ROLE,ROLE] [--dir D]\n");
    return 2;
}
