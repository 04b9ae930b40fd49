namespace Kvm;

/// <summary>One swap area of the kernel (<c>swap_info[type]</c>), as <c>/proc/swaps</c> and <c>kvm_getswapinfo</c> report it.</summary>
/// <param name="Type">The area's index in <c>swap_info[]</c>: the type field of swap entries that point into it.</param>
/// <param name="Name">The device or file path (<c>swap_file</c> rebuilt from its dentry and mount).</param>
/// <param name="IsFile">True for a swap file, false for a block device (<c>SWP_BLKDEV</c>).</param>
/// <param name="TotalPages">Usable pages (<c>pages</c>).</param>
/// <param name="UsedPages">Pages in use (<c>inuse_pages</c>).</param>
/// <param name="Priority">The area's priority.</param>
/// <param name="MaxPages">Slots including the header and bad pages (<c>max</c>).</param>
/// <param name="Flags">The kernel's <c>SWP_*</c> flags.</param>
/// <param name="IsWriteable">True when the area is active (<c>SWP_WRITEOK</c>), false while it is being swapped off.</param>
public sealed record SwapArea(int Type, string Name, bool IsFile, long TotalPages, long UsedPages, int Priority, long MaxPages, ulong Flags, bool IsWriteable);

/// <summary>Every active swap area, and the totals.</summary>
/// <param name="Areas">The areas in <c>swap_info[]</c> order.</param>
/// <param name="PageSize">The page size, to turn pages into bytes.</param>
public sealed record SwapSummary(IReadOnlyList<SwapArea> Areas, int PageSize)
{
    /// <summary>Usable pages over all areas.</summary>
    public long TotalPages => Areas.Sum(a => a.TotalPages);

    /// <summary>Used pages over all areas.</summary>
    public long UsedPages => Areas.Sum(a => a.UsedPages);

    /// <summary>
    /// The rows <c>kvm_getswapinfo(kd, ary, maxswap, flags)</c> fills: the first <c>maxswap − 1</c> areas, then one
    /// total row over every area (even those left out), with <see cref="SwapArea.Type"/> −1 and an empty name. The
    /// index of the total row, libkvm's return value, is <c>Count − 1</c>. Null for <c>maxswap &lt;= 0</c>, where libkvm
    /// returns −1 and writes nothing.
    /// </summary>
    /// <param name="maxSwap">The number of rows the caller's array holds.</param>
    public IReadOnlyList<SwapArea>? ToKvmSwapRows(int maxSwap)
    {
        if (maxSwap <= 0)
        {
            return null;
        }

        var rows = Areas.Take(maxSwap - 1).ToList();
        rows.Add(new SwapArea(-1, "", false, TotalPages, UsedPages, 0, Areas.Sum(a => a.MaxPages), 0, true));
        return rows;
    }
}

/// <summary>The type of an open file, from its inode's mode.</summary>
public enum OpenFileType
{
    /// <summary>Unknown or unreadable mode.</summary>
    Unknown,

    /// <summary>A regular file.</summary>
    Regular,

    /// <summary>A directory.</summary>
    Directory,

    /// <summary>A character device.</summary>
    CharacterDevice,

    /// <summary>A block device.</summary>
    BlockDevice,

    /// <summary>A pipe or FIFO.</summary>
    Fifo,

    /// <summary>A socket.</summary>
    Socket,

    /// <summary>A symbolic link.</summary>
    SymbolicLink,
}

/// <summary>One open file descriptor of a process.</summary>
/// <param name="Pid">The process id.</param>
/// <param name="Command">The process's command name.</param>
/// <param name="Fd">The descriptor number.</param>
/// <param name="Path">The path as <c>/proc/PID/fd</c> shows it (mount prefix included; <c>pipe:[ino]</c> for pipes).</param>
/// <param name="Flags">The open flags (<c>f_flags</c>, plus <c>O_CLOEXEC</c> when close-on-exec is set), as <c>/proc/PID/fdinfo</c> shows them.</param>
/// <param name="Position">The file position (<c>f_pos</c>).</param>
/// <param name="Type">The file type.</param>
/// <param name="Inode">The inode number.</param>
/// <param name="FileAddress">The kernel address of the <c>struct file</c>.</param>
public sealed record OpenFile(int Pid, string Command, int Fd, string Path, uint Flags, long Position, OpenFileType Type, ulong Inode, ulong FileAddress);
