/*
 * kvm.h - the kernel memory interface (libkvm) for Linux, from the Kvm project.
 *
 * One library serves both classic families:
 *   - FreeBSD's libkvm (kvm_open2, kvm_openfiles, kvm_getprocs, kvm_getswapinfo, ...), with
 *     FreeBSD's function names, argument order, return conventions and error model;
 *   - SunOS/illumos libkvm (kvm_nextproc, kvm_getu, kvm_getcmd, kvm_kread, kvm_uread, ...).
 * Where the two share a name (kvm_open, kvm_read, kvm_nlist) one function serves both.
 *
 * The kernel image is a Linux kernel: the running one (/proc/kcore) or a crash dump in any
 * common format (ELF vmcore, kdump-compressed, flattened, split, LiME, raw). The execfile
 * (namelist) may be a System.map, a kallsyms listing or a vmlinux; NULL means "use the
 * kernel's own kallsyms", so a bare dump is enough.
 *
 * Linux-specific extras carry the kvm_linux_ prefix. Structure layouts are fixed and checked
 * (see docs/libkvm-c.md in the source tree); this header needs only C99 and <stdint.h>.
 */
#ifndef _KVM_H_
#define _KVM_H_

#include <limits.h>       /* _POSIX2_LINE_MAX */
#include <stddef.h>       /* size_t */
#include <stdint.h>
#include <sys/types.h>    /* pid_t, uid_t, gid_t, dev_t, ssize_t, off_t */
#include <sys/time.h>     /* struct timeval */
#include <sys/resource.h> /* struct rusage */
#include <fcntl.h>        /* O_RDONLY, O_RDWR for the flags argument */

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this interface: major.minor as an integer (1.0 = 100). */
#define LIBKVM_LINUX_VERSION 100

#ifndef _POSIX2_LINE_MAX
#define _POSIX2_LINE_MAX 2048
#endif

/* Kernel virtual and physical addresses, and signed sizes, are 64-bit whatever the host. */
typedef uint64_t kvaddr_t;
typedef uint64_t kpaddr_t;
typedef int64_t kssize_t;

/* The descriptor: opaque. */
typedef struct __kvm kvm_t;

/* ---- Symbols ------------------------------------------------------------------------ */

#ifndef _KVM_NLIST_DECLARED
#define _KVM_NLIST_DECLARED
/*
 * FreeBSD's struct nlist (<nlist.h> without _AOUT_INCLUDE_). It is declared here because
 * Linux has no <nlist.h> of this shape (elfutils' <nlist.h> is the SysV one: do not include
 * both). A list ends at an entry whose n_name is NULL or "".
 */
struct nlist {
	const char *n_name;    /* symbol name, in: a leading '_' is optional */
	unsigned char n_type;  /* out: N_* type, N_UNDF (0) when not found */
	char n_other;          /* out: 0 */
	short n_desc;          /* out: 0 */
	unsigned long n_value; /* out: the symbol's runtime address, 0 when not found */
};
#endif

#define N_UNDF 0x00 /* undefined: the symbol was not found */
#define N_EXT  0x01 /* or-ed in: external (global) symbol */
#define N_ABS  0x02 /* absolute */
#define N_TEXT 0x04 /* text, and read-only data */
#define N_DATA 0x06 /* initialised data */
#define N_BSS  0x08 /* uninitialised data */
#define N_FN   0x1f /* file name */

/* The kvaddr_t variant of struct nlist, for kvm_nlist2. */
struct kvm_nlist {
	const char *n_name;
	unsigned char n_type;
	kvaddr_t n_value;
};

/* ---- Swap --------------------------------------------------------------------------- */

struct kvm_swap {
	char ksw_devname[32];     /* device or file; "" in the total row */
	unsigned int ksw_used;    /* pages in use */
	unsigned int ksw_total;   /* usable pages */
	int ksw_flags;            /* the kernel's SWP_* flags of the area */
	unsigned int ksw_reserved1;
	unsigned int ksw_reserved2;
};

#define SWIF_DEV_PREFIX 0x0002 /* keep the "/dev/" of block devices in ksw_devname */

/* ---- Pages (kvm_walk_pages) --------------------------------------------------------- */

#define VM_PROT_NONE    0x00
#define VM_PROT_READ    0x01
#define VM_PROT_WRITE   0x02
#define VM_PROT_EXECUTE 0x04

#define LIBKVM_WALK_PAGES_VERSION 2

struct kvm_page {
	unsigned int kp_version;  /* LIBKVM_WALK_PAGES_VERSION */
	kpaddr_t kp_paddr;        /* physical address */
	kvaddr_t kp_kmap_vaddr;   /* kernel-map address, 0 if the page is only direct-mapped */
	kvaddr_t kp_dmap_vaddr;   /* direct-map address (page_offset_base + pa; arm64 pa - PHYS_OFFSET + PAGE_OFFSET), 0 if none */
	unsigned char kp_prot;    /* VM_PROT_* */
	off_t kp_offset;          /* byte offset of the page's plain bytes in the core file, -1 if none */
	size_t kp_len;            /* the base page (4 KiB; arm64 the 4/16/64 KiB granule), or a large page or block */
};

typedef int kvm_walk_pages_cb_t(struct kvm_page *, void *);

/* ---- Processes (FreeBSD struct kinfo_proc) ------------------------------------------ */

/* kvm_getprocs op values (FreeBSD <sys/sysctl.h>) */
#define KERN_PROC_ALL        0    /* every thread of every process */
#define KERN_PROC_PID        1    /* by process id */
#define KERN_PROC_PGRP       2    /* by process group id */
#define KERN_PROC_SESSION    3    /* by session id */
#define KERN_PROC_TTY        4    /* by controlling tty (Linux dev_t, as /proc/PID/stat tty_nr) */
#define KERN_PROC_UID        5    /* by effective uid */
#define KERN_PROC_RUID       6    /* by real uid */
#define KERN_PROC_PROC       8    /* every process, one entry each */
#define KERN_PROC_RGID       10   /* by real gid */
#define KERN_PROC_GID        11   /* by effective gid */
#define KERN_PROC_INC_THREAD 0x10 /* or-ed in: one entry per thread */

#define KI_NSPARE_INT  2
#define KI_NSPARE_LONG 12
#define KI_NSPARE_PTR  5

#define WMESGLEN       8
#define LOCKNAMELEN    8
#define TDNAMLEN       16
#define COMMLEN        19
#define KI_EMULNAMELEN 16
#define KI_NGROUPS     16
#define LOGNAMELEN     17
#define LOGINCLASSLEN  17
#define KI_MAXCOMLEN   19 /* FreeBSD MAXCOMLEN */

#define KINFO_PROC_SIZE 1088 /* FreeBSD amd64/arm64 */

/* FreeBSD's sigset_t (128 signals); Linux's 64 fit in __bits[0..1]. */
typedef struct kvm_sigset {
	uint32_t __bits[4];
} kvm_sigset_t;

/* FreeBSD <sys/priority.h> */
struct priority {
	unsigned char pri_class;  /* PRI_* scheduling class */
	unsigned char pri_level;  /* the Linux task's prio (0-139) */
	unsigned char pri_native; /* the Linux task's normal_prio */
	unsigned char pri_user;   /* the Linux task's static_prio */
};
#define PRI_ITHD      1 /* interrupt thread */
#define PRI_REALTIME  2 /* SCHED_FIFO, SCHED_RR, SCHED_DEADLINE */
#define PRI_TIMESHARE 3 /* SCHED_NORMAL, SCHED_BATCH */
#define PRI_IDLE      4 /* SCHED_IDLE */

/* ki_stat: FreeBSD <sys/proc.h> process states */
#define SIDL   1 /* being created */
#define SRUN   2 /* running or runnable (Linux R) */
#define SSLEEP 3 /* sleeping (Linux S, D, I; see ki_tdflags TDF_SINTR) */
#define SSTOP  4 /* stopped or traced (Linux T, t) */
#define SZOMB  5 /* zombie or dead (Linux Z, X) */
#define SWAIT  6 /* waiting for an interrupt */
#define SLOCK  7 /* blocked on a lock */

/* ki_flag: FreeBSD P_* flags that Linux can tell */
#define P_CONTROLT   0x00000002 /* has a controlling terminal */
#define P_KPROC      0x00000004 /* kernel process (Linux kernel thread) */
#define P_HADTHREADS 0x00000080 /* has (or had) threads */
#define P_SYSTEM     0x00000200 /* system process: no signals, no stats */
#define P_WEXIT      0x00002000 /* working on exiting (Linux PF_EXITING) */
#define P_INMEM      0x10000000 /* loaded into memory: always set */

/* ki_kiflag */
#define KI_CTTY      0x00000001 /* controlling tty vnode active */
#define KI_SLEADER   0x00000002 /* session leader */
#define KI_LOCKBLOCK 0x00000004 /* blocked on lock ki_lockname */

/* ki_tdflags */
#define TDF_SINTR    0x00000008 /* sleep is interruptible (Linux S and I) */

#define KVM_NODEV ((uint64_t)-1) /* ki_tdev of a process without a controlling tty */

struct pargs;
struct proc;
struct user;
struct vnode;
struct filedesc;
struct vmspace;
struct pcb;
struct thread;
struct pwddesc;

/*
 * FreeBSD 13/14's struct kinfo_proc, byte for byte on LP64 (1088 bytes). Fields Linux
 * can fill are filled (see docs/libkvm-c.md for the mapping); the rest are zero.
 * Kernel addresses (ki_paddr = task_struct, ki_vmspace = mm_struct, ki_fd = files_struct,
 * ki_tdaddr = task_struct of the thread) are for kvm_read, never to be dereferenced.
 */
struct kinfo_proc {
	int ki_structsize;             /* KINFO_PROC_SIZE */
	int ki_layout;                 /* 0 */
	struct pargs *ki_args;
	struct proc *ki_paddr;         /* task_struct of the process (group leader) */
	struct user *ki_addr;
	struct vnode *ki_tracep;
	struct vnode *ki_textvp;
	struct filedesc *ki_fd;        /* files_struct */
	struct vmspace *ki_vmspace;    /* mm_struct, NULL for kernel threads */
	const void *ki_wchan;          /* NULL: Linux computes its wchan by unwinding the stack */
	pid_t ki_pid;                  /* process id (Linux tgid) */
	pid_t ki_ppid;
	pid_t ki_pgid;
	pid_t ki_tpgid;                /* the tty's foreground group, as /proc's tpgid: -1 without a tty */
	pid_t ki_sid;
	pid_t ki_tsid;                 /* the tty's session, 0 without a tty */
	short ki_jobc;
	short ki_spare_short1;
	uint32_t ki_tdev_freebsd11;    /* low 32 bits of ki_tdev */
	kvm_sigset_t ki_siglist;       /* Linux signal n at bit n - 1: pending (the thread's and the process's) */
	kvm_sigset_t ki_sigmask;       /* blocked */
	kvm_sigset_t ki_sigignore;     /* SIG_IGN */
	kvm_sigset_t ki_sigcatch;      /* a handler */
	uid_t ki_uid;                  /* effective */
	uid_t ki_ruid;
	uid_t ki_svuid;
	gid_t ki_rgid;
	gid_t ki_svgid;
	short ki_ngroups;
	short ki_spare_short2;
	gid_t ki_groups[KI_NGROUPS];   /* ki_groups[0] is the effective gid */
	uint64_t ki_size;              /* virtual size in bytes */
	int64_t ki_rssize;             /* resident pages */
	int64_t ki_swrss;
	int64_t ki_tsize;
	int64_t ki_dsize;
	int64_t ki_ssize;
	unsigned short ki_xstat;
	unsigned short ki_acflag;
	uint32_t ki_pctcpu;
	unsigned int ki_estcpu;
	unsigned int ki_slptime;
	unsigned int ki_swtime;
	unsigned int ki_cow;
	uint64_t ki_runtime;           /* user + system time in microseconds */
	struct timeval ki_start;       /* wall-clock start time (boot time + start_time) */
	struct timeval ki_childtime;
	long ki_flag;                  /* P_* */
	long ki_kiflag;                /* KI_* */
	int ki_traceflag;
	char ki_stat;                  /* S* */
	signed char ki_nice;
	char ki_lock;
	char ki_rqindex;
	unsigned char ki_oncpu_old;
	unsigned char ki_lastcpu_old;
	char ki_tdname[TDNAMLEN + 1];  /* the thread's name (Linux comm) */
	char ki_wmesg[WMESGLEN + 1];
	char ki_login[LOGNAMELEN + 1];
	char ki_lockname[LOCKNAMELEN + 1];
	char ki_comm[COMMLEN + 1];     /* the process's name (its group leader's comm) */
	char ki_emul[KI_EMULNAMELEN + 1];
	char ki_loginclass[LOGINCLASSLEN + 1];
	char ki_moretdname[KI_MAXCOMLEN - TDNAMLEN + 1];
	char ki_sparestrings[46];
	int ki_spareints[KI_NSPARE_INT];
	uint64_t ki_tdev;              /* controlling tty (Linux dev_t), KVM_NODEV if none */
	int ki_oncpu;                  /* CPU the thread runs on in the image, -1 if none */
	int ki_lastcpu;
	int ki_tracer;
	int ki_flag2;
	int ki_fibnum;
	unsigned int ki_cr_flags;
	int ki_jid;
	int ki_numthreads;
	int32_t ki_tid;                /* thread id (Linux pid of the task) */
	struct priority ki_pri;
	struct rusage ki_rusage;       /* ru_utime, ru_stime, ru_minflt, ru_majflt filled */
	struct rusage ki_rusage_ch;    /* ru_minflt, ru_majflt of waited-for children */
	struct pcb *ki_pcb;
	void *ki_kstack;               /* the task's kernel stack (task_struct.stack) */
	void *ki_udata;
	struct thread *ki_tdaddr;      /* task_struct of the thread */
	struct pwddesc *ki_pd;
	void *ki_spareptrs[KI_NSPARE_PTR];
	long ki_sparelongs[KI_NSPARE_LONG];
	long ki_sflag;
	long ki_tdflags;               /* TDF_SINTR */
};

/* ---- Per-CPU (kvm_getpcpu) ---------------------------------------------------------- */

#define CPUSTATES 5
#define CP_USER   0
#define CP_NICE   1
#define CP_SYS    2
#define CP_INTR   3
#define CP_IDLE   4

/*
 * What Linux can tell of one CPU, under FreeBSD's struct pcpu field names. kvm_getpcpu
 * returns a malloc'ed copy that the caller frees.
 */
struct pcpu {
	void *pc_curthread;            /* task_struct running on the CPU in the image */
	void *pc_idlethread;           /* reserved: NULL */
	uint32_t pc_cpuid;
	int32_t pc_curpid;             /* pid of pc_curthread, -1 if unknown */
	uintptr_t pc_dynamic;          /* the CPU's per-CPU offset (__per_cpu_offset[cpu]) */
	long pc_cp_time[CPUSTATES];    /* CPU time in USER_HZ (100 Hz) ticks, as /proc/stat */
	char pc_curcomm[TDNAMLEN + 1]; /* name of pc_curthread */
};

/* ---- SunOS/illumos processes -------------------------------------------------------- */

#define PSARGSZ      80 /* illumos u_psargs */
#define KVM_COMMSZ   16 /* Linux TASK_COMM_LEN */

/*
 * The u-area of the SunOS interface. illumos embeds it in proc_t and kvm_getu returns a
 * pointer to it; so does this library (p->p_user). On Linux the argument and environment
 * strings are contiguous areas of the process's memory (mm->arg_start .. arg_end).
 * The typedef is user_t; the tag is not "user", which glibc's <sys/user.h> owns.
 */
typedef struct kvm_user {
	char u_comm[KVM_COMMSZ + 1];   /* command name */
	char u_psargs[PSARGSZ];        /* the arguments joined by spaces, truncated */
	int u_argc;                    /* number of arguments, -1 if they could not be read */
	uint64_t u_arg_start;          /* user address of the argument strings */
	uint64_t u_arg_end;
	uint64_t u_env_start;          /* user address of the environment strings */
	uint64_t u_env_end;
} user_t;

/* illumos p_stat values */
#define KVM_SSLEEP  1
#define KVM_SRUN    2
#define KVM_SZOMB   3
#define KVM_SSTOP   4
#define KVM_SIDL    5
#define KVM_SONPROC 6

typedef struct proc {
	pid_t p_pid;
	pid_t p_ppid;
	pid_t p_pgrp;
	pid_t p_sid;
	uid_t p_ruid;
	uid_t p_uid;                   /* effective */
	uid_t p_suid;
	gid_t p_rgid;
	gid_t p_gid;                   /* effective */
	gid_t p_sgid;
	char p_stat;                   /* KVM_S* */
	char p_linux_state;            /* the /proc state letter: R S D T t Z X I */
	signed char p_nice;
	unsigned char p_pri;           /* Linux prio, 0-139 */
	int p_nlwp;                    /* threads */
	uint64_t p_flag;               /* Linux PF_* task flags */
	uint64_t p_ttydev;             /* controlling tty (Linux dev_t), KVM_NODEV if none */
	uint64_t p_size;               /* virtual size in bytes */
	int64_t p_rssize;              /* resident pages */
	struct timeval p_start;        /* wall-clock start time */
	struct timeval p_utime;
	struct timeval p_stime;
	kvaddr_t p_addr;               /* kernel address of the task_struct */
	kvaddr_t p_as;                 /* kernel address of the mm_struct, 0 for kernel threads */
	user_t p_user;                 /* filled by kvm_getu */
} proc_t;

/* ---- FreeBSD interface -------------------------------------------------------------- */

int       kvm_close(kvm_t *);
int       kvm_dpcpu_setcpu(kvm_t *, unsigned int);
char    **kvm_getargv(kvm_t *, const struct kinfo_proc *, int);
int       kvm_getcptime(kvm_t *, long *);
char    **kvm_getenvv(kvm_t *, const struct kinfo_proc *, int);
char     *kvm_geterr(kvm_t *);
int       kvm_getloadavg(kvm_t *, double[], int);
int       kvm_getmaxcpu(kvm_t *);
int       kvm_getncpus(kvm_t *);
void     *kvm_getpcpu(kvm_t *, int);
uint64_t  kvm_counter_u64_fetch(kvm_t *, unsigned long);
struct kinfo_proc *kvm_getprocs(kvm_t *, int, int, int *);
int       kvm_getswapinfo(kvm_t *, struct kvm_swap *, int, int);
int       kvm_native(kvm_t *);
int       kvm_nlist(kvm_t *, struct nlist *);
int       kvm_nlist2(kvm_t *, struct kvm_nlist *);
kvm_t    *kvm_open(const char *, const char *, const char *, int, const char *);
kvm_t    *kvm_openfiles(const char *, const char *, const char *, int, char *);
kvm_t    *kvm_open2(const char *, const char *, int, char *, int (*)(const char *, kvaddr_t *));
ssize_t   kvm_read(kvm_t *, unsigned long, void *, size_t);
ssize_t   kvm_read_zpcpu(kvm_t *, unsigned long, void *, size_t, int);
ssize_t   kvm_read2(kvm_t *, kvaddr_t, void *, size_t);
ssize_t   kvm_write(kvm_t *, unsigned long, const void *, size_t);
kssize_t  kvm_kerndisp(kvm_t *);
int       kvm_walk_pages(kvm_t *, kvm_walk_pages_cb_t *, void *);

/* ---- SunOS/illumos interface -------------------------------------------------------- */

struct proc *kvm_getproc(kvm_t *, pid_t);
struct proc *kvm_nextproc(kvm_t *);
int       kvm_setproc(kvm_t *);
user_t   *kvm_getu(kvm_t *, struct proc *);
int       kvm_getcmd(kvm_t *, struct proc *, user_t *, char ***, char ***);
ssize_t   kvm_kread(kvm_t *, uintptr_t, void *, size_t);
ssize_t   kvm_kwrite(kvm_t *, uintptr_t, const void *, size_t);
ssize_t   kvm_uread(kvm_t *, uintptr_t, void *, size_t);
ssize_t   kvm_uwrite(kvm_t *, uintptr_t, const void *, size_t);

/* ---- Linux extras ------------------------------------------------------------------- */

/*
 * The kernel log as dmesg(1) prints it ("[    1.234567] text\n" per line). The text belongs
 * to the descriptor until the next call or kvm_close. *lenp (may be NULL) gets its length.
 * NULL on error (kvm_geterr says why).
 */
const char *kvm_linux_dmesg(kvm_t *, size_t *);

#ifdef __cplusplus
}
#endif

#if defined(__LP64__) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct kinfo_proc) == KINFO_PROC_SIZE, "struct kinfo_proc must be FreeBSD's 1088 bytes");
#endif

#endif /* !_KVM_H_ */
