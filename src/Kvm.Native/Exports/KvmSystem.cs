using System.Runtime.InteropServices;
using Kvm.Native.Interop;
using Kvm.Native.Mirrors;

namespace Kvm.Native.Exports;

/// <summary>
/// System state: <c>kvm_getloadavg</c>, <c>kvm_getswapinfo</c>, and the per-CPU family (<c>kvm_getmaxcpu</c>,
/// <c>kvm_getncpus</c>, <c>kvm_getpcpu</c>, <c>kvm_dpcpu_setcpu</c>, <c>kvm_read_zpcpu</c>,
/// <c>kvm_counter_u64_fetch</c>). FreeBSD caches these in process-wide statics; here each descriptor has its own.
/// </summary>
internal static unsafe class KvmSystem
{
    private const int SwifDevPrefix = 0x2;

    /// <summary><c>kvm_getloadavg(kd, loadavg, nelem)</c>: fills up to 3 samples (1, 5, 15 min); returns how many, or −1.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_getloadavg")]
    public static int GetLoadAverage(nint kd, double* samples, int count) => ExportGuard.Run(kd, -1, k =>
    {
        if (count < 0 || (samples is null && count > 0))
        {
            throw new ArgumentException("kvm_getloadavg: bad arguments");
        }

        double[] values = k.Image.GetLoadAverage().ToArray();
        int n = Math.Min(count, values.Length);
        for (int i = 0; i < n; i++)
        {
            samples[i] = values[i];
        }

        return n;
    });

    /// <summary>
    /// <c>kvm_getswapinfo(kd, ary, maxswap, flags)</c>: one row per swap area in <c>ary[0 .. maxswap−2]</c>, then a
    /// total row; returns the total row's index. Block devices are named without <c>/dev/</c> unless
    /// <c>SWIF_DEV_PREFIX</c> is given, as FreeBSD's <c>devname</c>; swap files keep their path, and FreeBSD's NFS swap
    /// is <c>[NFS swap]</c>. <c>kd == NULL</c> returns 0 (FreeBSD's cache reset); <c>maxswap &lt;= 0</c> returns −1
    /// without a message.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_getswapinfo")]
    public static int GetSwapInfo(nint kd, KvmSwap* rows, int maxSwap, int flags)
    {
        if (kd == 0)
        {
            return 0;
        }

        return ExportGuard.Run(kd, -1, k =>
        {
            if (maxSwap <= 0)
            {
                return -1;
            }

            if (rows is null)
            {
                throw new ArgumentException("kvm_getswapinfo: NULL array");
            }

            var summary = k.Image.GetSwapInfo().ToKvmSwapRows(maxSwap)!;
            for (int i = 0; i < summary.Count; i++)
            {
                var area = summary[i];
                rows[i] = default;
                string name = area.IsFile || (flags & SwifDevPrefix) != 0 || !area.Name.StartsWith("/dev/", StringComparison.Ordinal)
                    ? area.Name
                    : area.Name["/dev/".Length..];
                NativeText.Copy(name, rows[i].DevName, KvmSwap.DevNameLength);
                rows[i].Used = (uint)Math.Clamp(area.UsedPages, 0, uint.MaxValue);
                rows[i].Total = (uint)Math.Clamp(area.TotalPages, 0, uint.MaxValue);
                rows[i].Flags = unchecked((int)area.Flags);
            }

            return summary.Count - 1;
        });
    }

    /// <summary><c>kvm_getmaxcpu(kd)</c>: how many CPU ids there can be (<c>nr_cpu_ids</c>); 0 for NULL, −1 on error.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_getmaxcpu")]
    public static int GetMaxCpu(nint kd) => kd == 0 ? 0 : ExportGuard.Run(kd, -1, k => k.Image.GetCpus().MaxCpus);

    /// <summary><c>kvm_getncpus(kd)</c>: how many CPUs are online; −1 on error.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_getncpus")]
    public static int GetCpuCount(nint kd) => ExportGuard.Run(kd, -1, k => k.Image.GetCpus().OnlineCpus);

    /// <summary>
    /// <c>kvm_getpcpu(kd, cpu)</c>: a malloc'ed <c>struct pcpu</c> the caller frees; NULL for an offline or
    /// out-of-range CPU (and for <c>kd == NULL</c>); <c>(void *)−1</c> on error. <c>pc_cp_time</c> is the CPU's
    /// <see cref="CpuTimes.ToCpuStates"/>: USER_HZ ticks from Linux, the kernel's own <c>pc_cp_time</c> from FreeBSD.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_getpcpu")]
    public static nint GetPcpu(nint kd, int cpu) => kd == 0 ? 0 : ExportGuard.Run(kd, (nint)(-1), k =>
    {
        var cpus = k.Image.GetCpus();
        if (cpu < 0 || cpu >= cpus.MaxCpus || cpus.Cpus.FirstOrDefault(c => c.Cpu == cpu) is not { IsOnline: true } info)
        {
            return 0;
        }

        long[] times;
        try
        {
            times = k.Image.GetCpuTimes().Cpus.First(c => c.Cpu == cpu).ToCpuStates();
        }
        catch (KvmException e)
        {
            // The rest of struct pcpu is still worth having: pc_cp_time stays zero and the reason is kept.
            times = new long[Pcpu.CpuStates];
            k.SetError($"kvm_getpcpu: CPU times unavailable: {e.Message}", hard: false);
        }

        var pcpu = (Pcpu*)NativeMemory.AllocZeroed((nuint)sizeof(Pcpu));
        pcpu->CurrentThread = info.CurrentTask;
        pcpu->CpuId = (uint)cpu;
        pcpu->CurrentPid = info.CurrentPid ?? -1;
        pcpu->Dynamic = (nuint)info.PerCpuOffset;
        for (int i = 0; i < Pcpu.CpuStates; i++)
        {
            pcpu->CpuTime[i] = times[i];
        }
        if (info.CurrentCommand is { } command)
        {
            NativeText.Copy(System.Text.Encoding.UTF8.GetBytes(command), pcpu->CurrentCommand, 17);
        }

        return (nint)pcpu;
    });

    /// <summary>
    /// <c>kvm_getcptime(kd, cp_time)</c>: fills <c>CPUSTATES</c> (5) counters summed over the CPUs — user, nice,
    /// system, interrupt (irq + softirq), idle (idle + iowait) — in USER_HZ ticks, as the <c>cpu</c> line of
    /// <c>/proc/stat</c>; from FreeBSD, the kernel's <c>cp_time</c> (statistics-clock ticks: the global where there is
    /// one, else the sum of each CPU's <c>pc_cp_time</c>, as lib/libkvm/kvm_cptime.c). 0, or −1; <c>kd == NULL</c>
    /// returns 0 (FreeBSD's cache reset).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_getcptime")]
    public static int GetCpTime(nint kd, long* counters)
    {
        if (kd == 0)
        {
            return 0;
        }

        return ExportGuard.Run(kd, -1, k =>
        {
            if (counters is null)
            {
                throw new ArgumentException("kvm_getcptime: NULL array");
            }

            long[] states = k.Image.GetCpuTimes().GetCpuStates();
            states.CopyTo(new Span<long>(counters, Pcpu.CpuStates));
            return 0;
        });
    }

    /// <summary>
    /// <c>kvm_dpcpu_setcpu(kd, cpu)</c>: chooses the CPU whose copy <c>kvm_nlist</c> returns for per-CPU
    /// variables. 0, or −1 for a CPU beyond <c>nr_cpu_ids</c>. FreeBSD, as lib/libkvm/kvm_pcpu.c: −1 with
    /// <c>kvm_dpcpu_setcpu: init failed: …</c> when the DPCPU data (<c>__start_set_pcpu</c>, <c>__stop_set_pcpu</c>,
    /// <c>dpcpu_off</c>, <c>mp_maxcpus</c>) cannot be read, <c>kvm_dpcpu_setcpu: CPU N too big</c> (errno
    /// <c>EINVAL</c>) beyond <c>mp_maxcpus</c>, <c>kvm_dpcpu_setcpu: CPU N not found</c> (errno <c>ENOENT</c>) where
    /// <c>dpcpu_off[N]</c> is 0; the CPU chosen stays as it was.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_dpcpu_setcpu")]
    public static int SetDpcpuCpu(nint kd, uint cpu) => ExportGuard.Run(kd, -1, k =>
    {
        if (k.Image.OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return SetFreeBsdDpcpuCpu(k, cpu);
        }

        int max = k.Image.GetCpus().MaxCpus;
        if (cpu >= (uint)max)
        {
            throw new ArgumentException($"kvm_dpcpu_setcpu: CPU {cpu} too big");
        }

        k.DpcpuCpu = (int)cpu;
        return 0;
    });

    /// <summary>
    /// <c>kvm_read_zpcpu(kd, base, buf, size, cpu)</c>: reads CPU <paramref name="cpu"/>'s copy of a per-CPU
    /// allocation (<see cref="KernelImage.GetPerCpuAllocationAddress"/>) — on Linux a <c>__percpu</c> pointer or
    /// per-CPU symbol, at <c>base + __per_cpu_offset[cpu]</c>; on FreeBSD a <c>UMA_ZONE_PCPU</c> allocation, at
    /// <c>base + zpcpu_offset_cpu(cpu)</c>. As <c>kvm_read</c>; 0 when the per-CPU offsets cannot be read, as FreeBSD;
    /// −1 for a CPU out of range.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_read_zpcpu")]
    public static nint ReadZpcpu(nint kd, nuint address, byte* buffer, nuint length, int cpu) => ExportGuard.Run(kd, (nint)(-1), k =>
    {
        ulong copy;
        try
        {
            copy = k.Image.GetPerCpuAllocationAddress(address, cpu);
        }
        catch (KvmException e)
        {
            k.SetError($"kvm_read_zpcpu: {e.Message}");
            return 0;
        }

        return KvmMemory.ReadFreeBsd(k, copy, buffer, length);
    });

    /// <summary>
    /// <c>kvm_counter_u64_fetch(kd, base)</c>: the value of the 64-bit per-CPU counter at <paramref name="address"/>
    /// (<see cref="KernelImage.ReadPerCpuCounter"/>): on Linux the sum over every possible CPU of a <c>u64 __percpu</c>;
    /// on FreeBSD the sum over <c>CPU_FOREACH</c> of a <c>counter_u64_t</c>'s copies. 0 on any failure, as FreeBSD.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_counter_u64_fetch")]
    public static ulong FetchCounter(nint kd, nuint address) => ExportGuard.Run(kd, 0UL, k => k.Image.ReadPerCpuCounter(address));

    /// <summary>kvm_pcpu.c <c>kvm_dpcpu_setcpu</c> and <c>_kvm_dpcpu_setcpu</c> on a FreeBSD image.</summary>
    private static int SetFreeBsdDpcpuCpu(NativeKvm k, uint cpu)
    {
        IReadOnlyList<ulong> offsets;
        try
        {
            offsets = k.Image.GetPerCpuOffsets();
        }
        catch (KvmException e)
        {
            k.SetError($"kvm_dpcpu_setcpu: init failed: {e.Message}");
            Errno.Set(Errno.For(e));
            return -1;
        }

        if (cpu >= (uint)offsets.Count)
        {
            k.SetError($"kvm_dpcpu_setcpu: CPU {cpu} too big");
            Errno.Set(Errno.EINVAL);
            return -1;
        }

        if (offsets[(int)cpu] == 0)
        {
            k.SetError($"kvm_dpcpu_setcpu: CPU {cpu} not found");
            Errno.Set(Errno.ENOENT);
            return -1;
        }

        k.DpcpuCpu = (int)cpu;
        return 0;
    }
}
