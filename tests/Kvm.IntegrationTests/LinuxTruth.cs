using System.Text.Json;

namespace Kvm.IntegrationTests;

/// <summary>One process as the guest's /proc recorded it (truth.json "processes").</summary>
public sealed record TruthProcess(int Pid, int Tgid, int Ppid, int Pgid, int Sid, uint[] Uids, uint[] Gids, string Comm, char State, bool KernelThread, byte[] Cmdline, byte[] Environ, int[] Threads, int Nice, int NumThreads, long TtyNr, long StartTicks, long RssPages, ulong VsizeBytes, int Priority)
{
    public static IReadOnlyList<TruthProcess> All(LabVariant v) =>
        v.Truth.GetProperty("processes").EnumerateArray().Select(Parse).ToList();

    /// <summary>Splits /proc/PID/cmdline-style bytes into strings the way the area is laid out: NUL-terminated.</summary>
    public static List<byte[]> Split(byte[] area)
    {
        var list = new List<byte[]>();
        int pos = 0;
        while (pos < area.Length)
        {
            int nul = Array.IndexOf(area, (byte)0, pos);
            if (nul < 0)
            {
                list.Add(area[pos..]);
                break;
            }

            list.Add(area[pos..nul]);
            pos = nul + 1;
        }

        return list;
    }

    private static TruthProcess Parse(JsonElement p) => new(
        p.GetProperty("pid").GetInt32(),
        p.GetProperty("tgid").GetInt32(),
        p.GetProperty("ppid").GetInt32(),
        p.GetProperty("pgid").GetInt32(),
        p.GetProperty("sid").GetInt32(),
        p.GetProperty("uid").EnumerateArray().Select(x => x.GetUInt32()).ToArray(),
        p.GetProperty("gid").EnumerateArray().Select(x => x.GetUInt32()).ToArray(),
        p.GetProperty("comm").GetString()!,
        p.GetProperty("state").GetString()![0],
        p.GetProperty("kernelThread").GetBoolean(),
        Convert.FromHexString(p.GetProperty("cmdlineHex").GetString()!),
        Convert.FromHexString(p.GetProperty("environHex").GetString()!),
        p.GetProperty("threads").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
        p.GetProperty("nice").GetInt32(),
        p.GetProperty("numThreads").GetInt32(),
        p.GetProperty("ttyNr").GetInt64(),
        p.GetProperty("startTime").GetInt64(),
        p.GetProperty("rssPages").GetInt64(),
        p.GetProperty("vsizeBytes").GetUInt64(),
        p.GetProperty("priority").GetInt32());
}

/// <summary>A user page the guest pushed to swap (truth.json "swappedPages").</summary>
public sealed record TruthSwappedPage(int Pid, ulong Va, string What, int SwapType, ulong SwapOffset)
{
    public static IReadOnlyList<TruthSwappedPage> All(LabVariant v) =>
        v.Truth.GetProperty("swappedPages").EnumerateArray()
            .Where(p => p.GetProperty("swapped").GetBoolean())
            .Select(p => new TruthSwappedPage(
                p.GetProperty("pid").GetInt32(),
                Convert.ToUInt64(p.GetProperty("va").GetString()!, 16),
                p.GetProperty("what").GetString()!,
                p.GetProperty("swapType").GetInt32(),
                p.GetProperty("swapOffset").GetUInt64()))
            .ToList();
}

/// <summary>
/// The cpu lines of the guest's /proc/stat on the last console line it printed before the host stopped it
/// (truth.json "procStatAtStop"), in USER_HZ ticks, fields in /proc/stat's order.
/// </summary>
public sealed record TruthProcStat(string Line, double UptimeSeconds, long[] Total, IReadOnlyDictionary<int, long[]> Cpus)
{
    public static readonly string[] Fields = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice"];

    /// <summary>The record, or null for a lab made before the collector printed /proc/stat.</summary>
    public static TruthProcStat? AtStop(LabVariant v)
    {
        if (!v.Truth.TryGetProperty("procStatAtStop", out var p) || p.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        static long[] Values(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt64()).ToArray();
        return new TruthProcStat(
            p.GetProperty("line").GetString()!,
            p.GetProperty("uptimeSeconds").GetDouble(),
            Values(p.GetProperty("total")),
            p.GetProperty("cpus").EnumerateArray().ToDictionary(c => c.GetProperty("cpu").GetInt32(), c => Values(c.GetProperty("values"))));
    }
}
