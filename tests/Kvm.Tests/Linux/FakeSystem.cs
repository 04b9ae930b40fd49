using System.Text;
using Kvm.Testing;
using Kvm.Testing.FakeKernel;

namespace Kvm.Tests.Linux;

/// <summary>
/// The fake machine the Linux walker tests read: every value here is the specification the tests assert against.
/// <code>
/// pid ppid pgid sid  comm          state        uid/euid  gid/egid  tty     notes
///   0    0    0   0  swapper/0     R            0/0       0/0       -       init_task, kernel thread
///   1    0    1   1  systemd       S            0/0       0/0       -       argv crosses a page boundary
///   2    0    0   0  kthreadd      S            0/0       0/0       -       kernel thread
///   3    2    0   0  kworker/0:0H  I (TASK_IDLE) 0/0      0/0       -       kernel thread, nice -20
/// 100    1  100 100  bash          S         1000/1000  100/100    pts300  env runs into a not-present page, open files
/// 200  100  200 100  python3       S         1000/0     100/50     pts300  threads 201 (R) and 202 (D); env page swapped out
/// 300  100  100 100  defunct       Z         1000/1000  100/100    pts300  zombie
/// 400  100  400 100  vim           T         1000/1000  100/100    pts300  stopped
/// </code>
/// Controlling terminal pts300: foreground group 200, session 100. Signals (bit n − 1 = signal n) and faults:
/// <code>
/// pid  ignored      caught        pending (own / shared)  blocked  min/maj faults (task; dead threads; children)
///   1  3            2, 17         -                       -        177/3; 10/1; 715/2
///   2  1-64         -             -                       -        -
/// 100  3, 20        2, 17, 33     -                       -        -
/// 200  13, 64       15, 33        - / 15                  10, 64   100/1; 1000/10; 5/6
/// 201  (200's sighand)            10 / 15                 -        20/2
/// 202  (200's sighand)            - / 15                  1        3/0
/// 300  no sighand (a released task): /proc shows no signals and no process faults, though some are written
/// </code>
/// Others: SIG_DFL everywhere, nothing pending, no faults.
/// CPUs 0-3, CPU 2 offline. CPU times in nanoseconds (NO_HZ active; the monotonic clock is <see cref="MonotonicNow"/>):
/// <code>
/// cpu  user          nice     system      idle (cpustat)  iowait  irq     softirq  steal    guest   guest_nice  tick_cpu_sched
///   0  100.005 s     2 s      30 s        999 s           1 s     0.5 s   0.25 s   0.125 s  10 s    1 s         busy; slept 12000.000123456 s idle, 5.5 s iowait
///   1  7 s           0        3 s         8 s             4 s     10 ms   0        0        0       0           idle for 1.5 s, no I/O waited for; slept 12300 s, 20 s
///   2  1 s           0        2 s         60 s            3 s     0       0        0        0       0           offline (its tick_cpu_sched says 77 s, 77 s, idle)
///   3  0.5 s         0.25 s   0.75 s      1 ms            2 ms    0       5 s      0        0       0           idle for 0.25 s with 2 tasks waiting for I/O; slept 12000 s, 40.000000999 s
/// </code>
/// </summary>
public sealed class FakeSystem
{
    public const ulong SystemdArgStart = 0x7ffc_0000_0ffa;
    public const ulong SystemdEnvStart = 0x7ffc_0000_1100;
    public const ulong BashArgStart = 0x7fff_0000_0100;
    public const ulong BashEnvStart = 0x7fff_0000_0fe0;
    public const ulong PythonArgStart = 0x7ffe_0000_0200;
    public const ulong PythonEnvStart = 0x7ffe_0000_0ff0;
    public const ulong SwapOffset = 0x1234;
    public const uint PipeInode = 12345;
    public const uint TtyNr = 0x10882c;
    public const ulong BashStack = 0xffff_c900_0012_0000; // new_encode_dev(MKDEV(136, 300)): (300 & 0xff) | 136 << 8 | (300 & ~0xff) << 12

    // tkr_mono.base: CLOCK_MONOTONIC at the dump, 12345.6789 s (uptime adds offs_boot's 5 s).
    public const long MonotonicNow = 12_345_678_900_000;

    public static readonly byte[] SystemdArgs = Encoding.ASCII.GetBytes("/sbin/init\0splash\0");
    public static readonly byte[] SystemdEnv = Encoding.ASCII.GetBytes("HOME=/\0TERM=linux\0");
    public static readonly byte[] BashArgs = Encoding.ASCII.GetBytes("-bash\0");

    // 32 bytes to the page end: two whole strings and the start of PATH, whose rest is on the not-present page.
    public static readonly byte[] BashEnvFirstPage = Encoding.ASCII.GetBytes("USER=u\0LANG=C.UTF-8\0PATH=/usr/b");
    public static readonly byte[] PythonArgs = [.. "python3\0\0-c\0"u8, 0xff, 0xfe, (byte)'x', 0];

    // 16 bytes to the page end; the next page is swapped out.
    public static readonly byte[] PythonEnvFirstPage = Encoding.ASCII.GetBytes("A=1\0LC_ALL=C.UTF");

    public FakeSystem(Action<FakeKernelObjects>? beforeLinking = null, IFakeKernel? kernel = null)
    {
        var k = new FakeKernelObjects(kernel);
        K = k;
        ulong root = k.NewCred(0, 0, 0, 0, 0, 0, 0, 0);
        ulong user = k.NewCred(1000, 1000, 1000, 1000, 100, 100, 100, 100);
        ulong setuid = k.NewCred(1000, 0, 0, 0, 100, 50, 50, 50);
        ulong initPid = k.Symbol("init_struct_pid");
        ulong pts = k.NewTty(k.NewTtyDriver(136, 0, "pts"), 300, "pts300");

        // Files: ext4 root with /tmp a tmpfs mount, and a pipe on pipefs.
        ulong ext4 = k.NewSuperBlock(k.NewFileSystemType("ext4"));
        ulong tmpfs = k.NewSuperBlock(k.NewFileSystemType("tmpfs"));
        ulong pipefs = k.NewSuperBlock(k.NewFileSystemType("pipefs"));
        ulong rootDir = k.NewDentry("/", null, k.NewInode(2, 0x41ed));
        ulong home = k.NewDentry("home", rootDir, k.NewInode(11, 0x41ed));
        ulong userDir = k.NewDentry("user", home, k.NewInode(12, 0x41ed));
        ulong notes = k.NewDentry("notes.txt", userDir, k.NewInode(131073, 0x81a4));
        ulong tmpDir = k.NewDentry("tmp", rootDir, k.NewInode(13, 0x41ff));
        ulong dev = k.NewDentry("dev", rootDir, k.NewInode(14, 0x41ed));
        ulong devNull = k.NewDentry("null", dev, k.NewInode(5, 0x21b6));
        ulong sda2 = k.NewDentry("sda2", dev, k.NewInode(6, 0x61b0));
        ulong swapfile = k.NewDentry("swapfile", rootDir, k.NewInode(15, 0x8180));
        ulong tmpRoot = k.NewDentry("/", null, k.NewInode(1, 0x43ff));
        ulong buildLog = k.NewDentry("build.log", tmpRoot, k.NewInode(77, 0x81a4));
        ulong pipeRoot = k.NewDentry("pipe:", null, k.NewInode(1, 0x41c0));
        ulong pipe = k.NewDentry(string.Empty, pipeRoot, k.NewInode(PipeInode, 0x1180));
        ulong rootMnt = k.NewMount(ext4, rootDir);
        ulong tmpMnt = k.NewMount(tmpfs, tmpRoot, rootMnt, tmpDir);
        ulong pipeMnt = k.NewMount(pipefs, pipeRoot);

        ulong bashFiles = BashFiles = k.NewFiles(
            128,
            (0, k.NewFile(rootMnt, devNull, 0x8000, 0), false),
            (1, k.NewFile(tmpMnt, buildLog, 0x8401, 4096), false),
            (2, k.NewFile(pipeMnt, pipe, 0x1, 0), false),
            (3, k.NewFile(rootMnt, notes, 0x8002, 123), true),
            (5, k.NewFile(rootMnt, userDir, 0x18000, 0), true),
            (70, k.NewFile(tmpMnt, tmpRoot, 0x10000, 0), true));
        ulong pythonFiles = k.NewFiles(64, (0, k.NewFile(pipeMnt, pipe, 0x0, 0), false));
        ulong systemdFiles = k.NewFiles(64);

        // Address spaces.
        var systemdMm = k.NewMm(totalVm: 0x5000, filePages: 100, anonPages: 50, swapEntries: 7, shmemPages: 3);
        systemdMm.WriteUser(SystemdArgStart, SystemdArgs);
        systemdMm.SetArgs(SystemdArgStart, SystemdArgStart + (ulong)SystemdArgs.Length);
        systemdMm.WriteUser(SystemdEnvStart, SystemdEnv);
        systemdMm.SetEnv(SystemdEnvStart, SystemdEnvStart + (ulong)SystemdEnv.Length);

        var bashMm = k.NewMm(totalVm: 0x800);
        bashMm.WriteUser(BashArgStart, BashArgs);
        bashMm.SetArgs(BashArgStart, BashArgStart + (ulong)BashArgs.Length);
        bashMm.WriteUser(BashEnvStart, BashEnvFirstPage);
        bashMm.NotPresent(BashEnvStart + 0x1000);
        bashMm.SetEnv(BashEnvStart, BashEnvStart + 0x60);

        var pythonMm = k.NewMm(totalVm: 0x1000);
        PythonMm = pythonMm;
        pythonMm.WriteUser(PythonArgStart, PythonArgs);
        pythonMm.SetArgs(PythonArgStart, PythonArgStart + (ulong)PythonArgs.Length);
        pythonMm.WriteUser(PythonEnvStart, PythonEnvFirstPage);
        pythonMm.SwapOut(PythonEnvStart + 0x10, 0, SwapOffset);
        pythonMm.SetEnv(PythonEnvStart, PythonEnvStart + 0x40);

        // Tasks.
        ulong Signal(int nr, int tgid, int pgid, int sid, ulong tty = 0, ulong utime = 0, ulong stime = 0)
        {
            ulong tgidPid = k.NewPid(tgid);
            ulong pgidPid = pgid == tgid ? tgidPid : pgid == 0 ? initPid : k.NewPid(pgid);
            ulong sidPid = sid == tgid ? tgidPid : sid == pgid ? pgidPid : k.NewPid(sid);
            return k.NewSignal(nr, tgidPid, pgidPid, sidPid, tty, utime, stime);
        }

        const uint pfk = FakeKernelObjects.PfKthread;
        Systemd = k.NewTask(1, 1, "systemd", k.InitTask, state: 1, cpu: 1, cred: root, signal: Signal(1, 1, 1, 1, utime: 500_000_000), mm: systemdMm.Address,
            files: systemdFiles, utime: 1_000_000_000, stime: 2_000_000_000, startBoottime: 10_000_000);
        Kthreadd = k.NewTask(2, 2, "kthreadd", k.InitTask, state: 1, flags: pfk, cred: root, signal: Signal(1, 2, 0, 0));
        Kworker = k.NewTask(3, 3, "kworker/0:0H", Kthreadd, state: 0x402, flags: pfk | 0x4000000, prio: 100, staticPrio: 100, cred: root, signal: Signal(1, 3, 0, 0));
        ulong bashSignal = Signal(1, 100, 100, 100, tty: pts);
        Bash = k.NewTask(100, 100, "bash", Systemd, state: 1, prio: 125, staticPrio: 125, cpu: 2, cred: user, signal: bashSignal, mm: bashMm.Address, files: bashFiles);
        ulong pySignal = Signal(3, 200, 200, 100, tty: pts);
        Python = k.NewTask(200, 200, "python3", Bash, state: 1, cred: setuid, signal: pySignal, mm: pythonMm.Address, files: pythonFiles, utime: 300, stime: 30);
        Thread201 = k.NewTask(201, 200, "python3", Bash, state: 0, cpu: 3, cred: setuid, signal: pySignal, mm: pythonMm.Address, files: pythonFiles, utime: 400, stime: 40);
        Thread202 = k.NewTask(202, 200, "worker", Bash, state: 2, cred: setuid, signal: pySignal, mm: pythonMm.Address, files: pythonFiles, utime: 500, stime: 50);
        Zombie = k.NewTask(300, 300, "defunct", Bash, state: 0x80, exitState: 0x20, flags: FakeKernelObjects.PfExiting, cred: user, signal: Signal(1, 300, 100, 100, tty: pts));
        Vim = k.NewTask(400, 400, "vim", Bash, state: 4, cred: user, signal: Signal(1, 400, 400, 100, tty: pts));

        // Signals and faults (see the table above): SIG_IGN is 1, any other non-zero value a handler.
        const ulong ign = 1, handler = 0x40_1000;
        k.SetTtyGroups(pts, k.SignalPid(pySignal, FakeKernelLayout.PidTypePgid), k.SignalPid(bashSignal, FakeKernelLayout.PidTypeSid));
        ulong dfl = k.NewSighand();
        foreach (ulong t in new[] { k.InitTask, Kworker, Vim })
        {
            k.SetSignals(t, dfl);
        }

        k.SetSignals(Systemd, k.NewSighand((3, ign), (2, handler), (17, handler)));
        k.SetFaults(Systemd, 177, 3);
        k.SetProcessFaults(k.ReadU64(Systemd + FakeKernelObjects.Off("task_struct.signal")), 10, 1, 715, 2);
        k.SetSignals(Kthreadd, k.NewSighand(Enumerable.Range(1, 64).Select(n => (n, ign)).ToArray()));
        k.SetSignals(Bash, k.NewSighand((3, ign), (20, ign), (2, handler), (17, handler + 0x10), (33, handler + 0x20)));
        k.Set(Bash, "task_struct.stack", BashStack);
        ulong pySighand = k.NewSighand((13, ign), (64, ign), (15, handler), (33, handler));
        k.SetSignals(Python, pySighand, blocked: (1UL << 9) | (1UL << 63));
        k.SetSignals(Thread201, pySighand, pending: 1UL << 9);
        k.SetSignals(Thread202, pySighand, blocked: 1);
        k.SetSharedPending(pySignal, 1UL << 14);
        k.SetFaults(Python, 100, 1);
        k.SetFaults(Thread201, 20, 2);
        k.SetFaults(Thread202, 3, 0);
        k.SetProcessFaults(pySignal, 1000, 10, 5, 6);
        ulong zombieSignal = k.ReadU64(Zombie + FakeKernelObjects.Off("task_struct.signal"));
        k.SetSignals(Zombie, 0, pending: 1UL << 8);
        k.SetFaults(Zombie, 50, 5);
        k.SetProcessFaults(zombieSignal, 60, 6, 70, 7);

        beforeLinking?.Invoke(k);
        foreach (ulong t in new[] { Systemd, Kthreadd, Kworker, Bash, Python, Zombie, Vim })
        {
            k.AddProcess(t);
        }

        k.AddThread(Thread201);
        k.AddThread(Thread202);

        // System state.
        k.SetLoadAverage(3072, 1536, 4660, 9);
        SwapFile = k.NewSwapInfo(FakeKernelLayout.SwpUsed | FakeKernelLayout.SwpWriteOk, -2, 262144, 262143, 1000, k.NewFile(rootMnt, swapfile, 0x8002, 0));
        ulong unused = k.NewSwapInfo(0, -3, 100, 99, 0, 0);
        ulong partition = k.NewSwapInfo(FakeKernelLayout.SwpUsed | FakeKernelLayout.SwpBlkdev, 10, 524288, 524287, 17, k.NewFile(rootMnt, sda2, 0x8002, 0));
        k.SetSwap(SwapFile, unused, partition, 0);
        PerCpuOffsets = k.SetCpus(4, 0b1011, [k.InitTask, Systemd, Python, Thread201]);
        k.SetClock(MonotonicNow, 5_000_000_000, 1_700_000_000);
        k.SetNohzActive(true);
        k.SetCpuStat(0, user: 100_005_000_000, nice: 2_000_000_000, system: 30_000_000_000, idle: 999_000_000_000, ioWait: 1_000_000_000, irq: 500_000_000,
            softIrq: 250_000_000, steal: 125_000_000, guest: 10_000_000_000, guestNice: 1_000_000_000);
        k.SetTickSched(0, 12_000_000_123_456, 5_500_000_000, 12_000_000_000_000, idleActive: false);
        k.SetCpuStat(1, user: 7_000_000_000, system: 3_000_000_000, idle: 8_000_000_000, ioWait: 4_000_000_000, irq: 10_000_000);
        k.SetTickSched(1, 12_300_000_000_000, 20_000_000_000, MonotonicNow - 1_500_000_000, idleActive: true);
        k.SetCpuStat(2, user: 1_000_000_000, system: 2_000_000_000, idle: 60_000_000_000, ioWait: 3_000_000_000);
        k.SetTickSched(2, 77_000_000_000, 77_000_000_000, 0, idleActive: true);
        k.SetCpuStat(3, user: 500_000_000, nice: 250_000_000, system: 750_000_000, idle: 1_000_000, ioWait: 2_000_000, softIrq: 5_000_000_000);
        k.SetTickSched(3, 12_000_000_000_000, 40_000_000_999, MonotonicNow - 250_000_000, idleActive: true);
        k.SetNrIowait(3, 2);
        var ring = new PrintkRingBuilder();
        ring.Add("Linux version 6.1.0-fake-amd64", timestamp: 0, level: 5);
        ring.Add("Command line: root=/dev/sda1 ro", timestamp: 1_000, level: 6, caller: 0x8000_0000);
        ring.Add("oom-kill: constraint=CONSTRAINT_NONE", timestamp: 5_123_456_789, level: 3, facility: 0, caller: 200);
        k.SetPrintk(ring);
    }

    public FakeKernelObjects K { get; }

    public ulong Systemd { get; }

    public ulong Kthreadd { get; }

    public ulong Kworker { get; }

    public ulong Bash { get; }

    public ulong Python { get; }

    public ulong Thread201 { get; }

    public ulong Thread202 { get; }

    public ulong Zombie { get; }

    public ulong Vim { get; }

    /// <summary>bash's files_struct (task_struct.files).</summary>
    public ulong BashFiles { get; }

    public ulong SwapFile { get; }

    public FakeMm PythonMm { get; }

    public ulong[] PerCpuOffsets { get; }

    public OpenedFakeKernel Open() => K.Open();
}
