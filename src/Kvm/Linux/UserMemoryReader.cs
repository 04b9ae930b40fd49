namespace Kvm.Linux;

/// <summary>
/// Reads a process's user memory through its own page tables (<c>mm->pgd</c>), like the kernel's
/// <c>access_remote_vm()</c> but from a dump: present pages come from the image, swapped-out pages from the swap
/// images the caller gave, and anything else stops the read with the page and the reason.
/// </summary>
internal sealed class UserMemoryReader
{
    private readonly LinuxKernel _k;

    /// <summary>Creates a reader over <paramref name="kernel"/>.</summary>
    public UserMemoryReader(LinuxKernel kernel) => _k = kernel;

    /// <summary>
    /// Reads <c>[start, end)</c> of <paramref name="process"/>'s address space, at most <paramref name="maxBytes"/>
    /// bytes. Returns the bytes read before the first unreadable page; <paramref name="reason"/> says why it stopped.
    /// </summary>
    public byte[] Read(KernelProcess process, ulong start, ulong end, long maxBytes, out string? reason, out MemoryFaultReason? faultReason)
    {
        reason = null;
        faultReason = null;
        if (process.MmAddress == 0 || process.PageTableAddress == 0)
        {
            reason = "kernel thread: no user address space";
            return [];
        }

        if (end <= start)
        {
            return [];
        }

        ulong length = Math.Min(end - start, (ulong)Math.Max(0, maxBytes));
        if (length > (ulong)_k.Limits.MaxKernelObjectBytes)
        {
            reason = $"user area 0x{start:x}-0x{end:x} is larger than the {_k.Limits.MaxKernelObjectBytes}-byte limit";
            return [];
        }

        // mm->pgd is a kernel virtual address of the top-level table; the walk needs its physical address.
        if (!_k.Memory.TryTranslate(process.PageTableAddress, out ulong root, out var tf))
        {
            reason = $"cannot find the page tables of pid {process.Pid}: {tf?.Message}";
            faultReason = MemoryFaultReason.NotMapped;
            return [];
        }

        var buffer = new byte[length];
        int done = 0;
        // A swap slot holds one kernel page: 4 KiB on x86-64, up to 64 KiB on arm64.
        int pageSize = _k.PageSize;
        ulong pageMask = ~(ulong)(pageSize - 1);
        var page = new byte[pageSize];
        while ((ulong)done < length)
        {
            ulong va = start + (ulong)done;
            int n = _k.Memory.ReadVirtual(va, buffer.AsSpan(done), out var fault, root);
            done += n;
            if (fault is null)
            {
                break;
            }

            ulong faultVa = fault.Address;
            if (fault.Reason == MemoryFaultReason.SwappedOut && fault.Fault is { } f)
            {
                int type = _k.SwapEntries.Type(f.Entry);
                ulong offset = _k.SwapEntries.Offset(f.Entry);
                string where = $"swapped out: area {type}, offset {offset}";
                if (_k.Swap is null)
                {
                    reason = $"page 0x{faultVa & pageMask:x} is {where} (no swap image given)";
                    faultReason = MemoryFaultReason.SwappedOut;
                    break;
                }

                if (!_k.Swap.TryReadPage(type, offset, page, out string? error))
                {
                    reason = $"page 0x{faultVa & pageMask:x} is {where}: {error}";
                    faultReason = MemoryFaultReason.SwappedOut;
                    break;
                }

                int inPage = (int)(faultVa & ~pageMask);
                int take = (int)Math.Min((ulong)(pageSize - inPage), length - (ulong)done);
                page.AsSpan(inPage, take).CopyTo(buffer.AsSpan(done));
                done += take;
                continue;
            }

            reason = fault.Reason switch
            {
                MemoryFaultReason.Excluded => $"page 0x{faultVa & pageMask:x} was excluded from the dump (makedumpfile dump level)",
                MemoryFaultReason.NotMapped => $"page 0x{faultVa & pageMask:x} is not mapped: {fault.Message}",
                _ => $"page 0x{faultVa & pageMask:x}: {fault.Message}",
            };
            faultReason = fault.Reason;
            break;
        }

        return done == buffer.Length ? buffer : buffer.AsSpan(0, done).ToArray();
    }

    /// <summary>
    /// Reads a NUL-separated string area (argv or environment) and splits it, honouring libkvm's <c>nchr</c>: at most
    /// <paramref name="maxBytes"/> bytes including the NULs (0 = no limit beyond the area).
    /// </summary>
    public ProcessStrings ReadStrings(KernelProcess process, ulong start, ulong end, int maxBytes)
    {
        long limit = maxBytes <= 0 ? long.MaxValue : maxBytes;
        ulong areaLength = end > start ? end - start : 0;
        bool truncated = (ulong)Math.Min(limit, long.MaxValue) < areaLength;
        var bytes = Read(process, start, end, limit, out string? reason, out var faultReason);

        // nchr counts the NULs: a string cut by the limit ends with a NUL in the limit's last byte, as libkvm's
        // kvm_argv writes buf[nchr - 1] = '\0' on a truncated buffer, so it keeps one byte less.
        if (truncated && bytes.Length == limit && bytes[^1] != 0)
        {
            bytes = bytes[..^1];
        }

        var values = new List<byte[]>();
        int pos = 0;
        while (pos < bytes.Length)
        {
            int nul = Array.IndexOf(bytes, (byte)0, pos);
            if (nul < 0)
            {
                values.Add(bytes.AsSpan(pos).ToArray());
                break;
            }

            values.Add(bytes.AsSpan(pos, nul - pos).ToArray());
            pos = nul + 1;
        }

        return new ProcessStrings(values, reason is null, reason, faultReason, truncated && reason is null);
    }
}
