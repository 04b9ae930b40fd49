using System.Runtime.InteropServices;
using System.Text;

namespace Kvm.Native.Interop;

/// <summary>
/// What a <c>kvm_t *</c> stands for: the opened <see cref="KernelImage"/>, libkvm's error buffer and the memory the
/// descriptor hands out. The <c>kvm_t *</c> itself is the address of the native error buffer, so that
/// <c>kvm_geterr</c> can return it and the handle table can check a caller's pointer before using it.
/// </summary>
internal sealed unsafe class NativeKvm : IDisposable
{
    /// <summary><c>_POSIX2_LINE_MAX</c>: the size of libkvm's error buffers.</summary>
    public const int ErrorBufferSize = 2048;

    private readonly object _errorLock = new();
    private readonly byte* _errorBuffer;
    private Dictionary<int, KernelProcess>? _byPid;

    /// <summary>Wraps an opened image; <paramref name="program"/> is <c>kvm_open</c>'s <c>errstr</c> (SunOS style), or null.</summary>
    public NativeKvm(KernelImage image, string? program)
    {
        Image = image;
        Program = program;
        _errorBuffer = (byte*)NativeMemory.AllocZeroed(ErrorBufferSize);
    }

    /// <summary>The <c>kvm_t *</c> handed to C.</summary>
    public nint Handle => (nint)_errorBuffer;

    /// <summary>The image.</summary>
    public KernelImage Image { get; }

    /// <summary>The SunOS-style prefix for hard errors, which then go to stderr; null for the BSD model.</summary>
    public string? Program { get; }

    /// <summary>The last <c>kvm_getprocs</c> array.</summary>
    public OwnedBuffer Procs { get; } = new();

    /// <summary>The processes behind <see cref="Procs"/>, in array order.</summary>
    public IReadOnlyList<KernelProcess> ProcsSource { get; private set; } = [];

    /// <summary>The last <c>kvm_getargv</c> vector.</summary>
    public OwnedBuffer Argv { get; } = new();

    /// <summary>The last <c>kvm_getenvv</c> vector.</summary>
    public OwnedBuffer Envv { get; } = new();

    /// <summary>The last <c>kvm_linux_dmesg</c> text.</summary>
    public OwnedBuffer KernelLog { get; } = new();

    /// <summary>The SunOS <c>proc_t</c> that <c>kvm_nextproc</c>/<c>kvm_getproc</c> return, overwritten by each call.</summary>
    public OwnedBuffer SunProc { get; } = new();

    /// <summary>The SunOS process list being iterated (<c>kvm_setproc</c> takes a new snapshot).</summary>
    public IReadOnlyList<KernelProcess>? SunList { get; set; }

    /// <summary>The next index of <see cref="SunList"/> for <c>kvm_nextproc</c>.</summary>
    public int SunIndex { get; set; }

    /// <summary>The process last returned by <c>kvm_nextproc</c>/<c>kvm_getproc</c>: the address space of <c>kvm_uread</c>.</summary>
    public KernelProcess? SunCurrent { get; set; }

    /// <summary>The CPU whose copy <c>kvm_nlist</c> returns for per-CPU symbols (<c>kvm_dpcpu_setcpu</c>).</summary>
    public int DpcpuCpu { get; set; }

    /// <summary>Serialises calls that use the descriptor's owned buffers; memory reads do not take it.</summary>
    public object Sync { get; } = new();

    /// <summary>Remembers the processes behind a new <c>kvm_getprocs</c> array.</summary>
    public void SetProcs(IReadOnlyList<KernelProcess> processes)
    {
        ProcsSource = processes;
        _byPid = null;
    }

    /// <summary>
    /// The process a caller's <c>struct kinfo_proc</c> stands for: by position when it points into our last array,
    /// else by <c>ki_pid</c> among the last array's processes, else by a fresh look-up.
    /// </summary>
    public KernelProcess? FindProcess(void* entry, int pid, int entrySize)
    {
        if (Procs.Contains(entry))
        {
            long index = ((byte*)entry - (byte*)Procs.Pointer) / entrySize;
            if (index < ProcsSource.Count)
            {
                return ProcsSource[(int)index];
            }
        }

        _byPid ??= ProcsSource.Where(p => p.Pid == p.Tgid).GroupBy(p => p.Pid).ToDictionary(g => g.Key, g => g.First());
        return _byPid.TryGetValue(pid, out var known) ? known : Image.FindProcess(pid);
    }

    /// <summary>
    /// Records an error as libkvm's <c>_kvm_err</c> does: a hard error on a SunOS-style descriptor is printed to
    /// stderr as <c>errstr: message</c> and leaves the buffer alone; everything else replaces the buffer's text.
    /// </summary>
    public void SetError(string message, bool hard = true)
    {
        if (hard && Program is not null)
        {
            WriteStandardError(Program, message);
            return;
        }

        lock (_errorLock)
        {
            NativeText.Copy(message, _errorBuffer, ErrorBufferSize);
        }
    }

    /// <summary>Prints <c>program: message</c> on stderr (file descriptor 2, unbuffered, as libkvm's fprintf).</summary>
    public static void WriteStandardError(string program, string message)
    {
        byte[] line = Encoding.UTF8.GetBytes($"{program}: {message}\n");
        using var stderr = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(2, ownsHandle: false), FileAccess.Write, 1);
        stderr.Write(line);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Procs.Dispose();
        Argv.Dispose();
        Envv.Dispose();
        KernelLog.Dispose();
        SunProc.Dispose();
        Image.Dispose();
        NativeMemory.Free(_errorBuffer);
    }
}
