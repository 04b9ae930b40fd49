using System.Runtime.InteropServices;
using Kvm.Native.Interop;

namespace Kvm.Native.Exports;

/// <summary>Opening and closing: <c>kvm_open</c>, <c>kvm_openfiles</c>, <c>kvm_open2</c>, <c>kvm_close</c>, <c>kvm_geterr</c>, <c>kvm_native</c>, <c>kvm_kerndisp</c>.</summary>
internal static unsafe class KvmOpen
{
    /// <summary>
    /// <c>kvm_open(execfile, corefile, swapfile, flags, errstr)</c>: the SunOS model. With a non-NULL
    /// <c>errstr</c>, errors print to stderr as <c>errstr: message</c>; with NULL they are silent.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_open")]
    public static nint Open(byte* execFile, byte* coreFile, byte* swapFile, int flags, byte* errorPrefix)
    {
        string? program = NativeText.Read(errorPrefix);
        return Opener.Open(NativeText.Read(execFile), NativeText.Read(coreFile), NativeText.Read(swapFile), flags, null, program, null);
    }

    /// <summary><c>kvm_openfiles(execfile, corefile, swapfile, flags, errbuf)</c>: the BSD model, errors into <c>errbuf</c>.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_openfiles")]
    public static nint OpenFiles(byte* execFile, byte* coreFile, byte* swapFile, int flags, byte* errorBuffer) =>
        Opener.Open(NativeText.Read(execFile), NativeText.Read(coreFile), NativeText.Read(swapFile), flags, null, null, errorBuffer);

    /// <summary><c>kvm_open2(execfile, corefile, flags, errbuf, resolver)</c>: the BSD model with a symbol resolver.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_open2")]
    public static nint Open2(byte* execFile, byte* coreFile, int flags, byte* errorBuffer, delegate* unmanaged<byte*, ulong*, int> resolver)
    {
        SymbolResolver? wrapped = resolver is null ? null : Opener.WrapResolver(resolver);
        return Opener.Open(NativeText.Read(execFile), NativeText.Read(coreFile), null, flags, wrapped, null, errorBuffer);
    }

    /// <summary><c>kvm_close(kd)</c>: 0, or −1 with errno <c>EINVAL</c> for NULL or a descriptor that is not open.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_close")]
    public static int Close(nint kd)
    {
        if (!HandleTable.TryRemove(kd, out var kvm))
        {
            Errno.Set(Errno.EINVAL);
            return -1;
        }

        lock (kvm.Sync)
        {
            kvm.Dispose();
        }

        return 0;
    }

    /// <summary><c>kvm_geterr(kd)</c>: the descriptor's last error text; <c>""</c> for NULL.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_geterr")]
    public static nint GetError(nint kd) => HandleTable.TryGet(kd, out var kvm) ? kvm.Handle : NativeText.EmptyString;

    /// <summary>
    /// <c>kvm_native(kd)</c>: 1 when the image is of the host's kind — a Linux kernel of the host's architecture (or
    /// the live kernel) — else 0. FreeBSD images are never native on a Linux host: their symbols come from the
    /// kernel's own ELF, which Kvm reads, so unlike FreeBSD's libkvm they need no resolver.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_native")]
    public static int Native(nint kd) => ExportGuard.Run(kd, 0, k => k.Image.IsLive || (k.Image.OperatingSystem == KernelOperatingSystem.Linux && IsHostArchitecture(k.Image.Architecture)) ? 1 : 0);

    /// <summary>
    /// <c>kvm_kerndisp(kd)</c>: how far the kernel was moved from its link address (the KASLR displacement), as
    /// FreeBSD's <c>kern.relbase_address − kern.base_address</c>; 0 when it was not moved or is unknown.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_kerndisp")]
    public static long KernelDisplacement(nint kd) => ExportGuard.Run(kd, 0L, k => k.Image.KaslrOffset);

    private static bool IsHostArchitecture(string architecture) => (architecture, RuntimeInformation.ProcessArchitecture) switch
    {
        ("x86_64", Architecture.X64) => true,
        ("aarch64" or "arm64", Architecture.Arm64) => true,
        ("i386" or "i686" or "x86", Architecture.X86) => true,
        _ => false,
    };

    /// <summary>The common open path of the three entry points.</summary>
    internal static class Opener
    {
        /// <summary>FreeBSD's <c>MAXPATHLEN</c>: longer file names are refused.</summary>
        public const int MaxPathLength = 1024;

        /// <summary>The environment variable naming a BTF file for kernels built without BTF.</summary>
        public const string BtfVariable = "KVM_BTF";

        private const int ReadWrite = 2; // O_RDWR

        /// <summary>The corefile names that mean "the running kernel".</summary>
        private static readonly string[] s_liveNames = ["/dev/mem", "/dev/kmem", "/dev/null", "/proc/kcore"];

        /// <summary>
        /// Opens an image and registers its descriptor. On failure the message goes to stderr with
        /// <paramref name="program"/>'s prefix (SunOS model), or into <paramref name="errorBuffer"/> (BSD model, when
        /// not NULL); errno is set; the result is 0.
        /// </summary>
        public static nint Open(string? execFile, string? coreFile, string? swapFile, int flags, SymbolResolver? resolver, string? program, byte* errorBuffer)
        {
            try
            {
                if (execFile is not null && execFile.Length >= MaxPathLength)
                {
                    throw new ArgumentException("exec file name too long");
                }

                if (coreFile is not null && coreFile.Length >= MaxPathLength)
                {
                    throw new ArgumentException("core file name too long");
                }

                // libkvm's check is flags & ~O_RDWR: O_RDONLY and O_RDWR pass, O_WRONLY and any other bit do not.
                if ((flags & ~ReadWrite) != 0)
                {
                    throw new ArgumentException("bad flags arg");
                }

                // libkvm's calls have no place for type information: a kernel built without BTF (Debian's 686) gets
                // it from $KVM_BTF (raw BTF or a vmlinux with .BTF, e.g. pahole --btf_encode_detached's output).
                var options = new KernelImageOptions
                {
                    Namelists = execFile is null ? [] : [execFile],
                    SwapFiles = swapFile is null ? [] : [swapFile],
                    Writable = flags == ReadWrite,
                    Resolver = resolver,
                    Btf = Environment.GetEnvironmentVariable(BtfVariable) is { Length: > 0 } btf ? btf : null,
                };
                var image = coreFile is null || s_liveNames.Contains(coreFile, StringComparer.Ordinal)
                    ? KernelImage.OpenLive(options)
                    : KernelImage.Open(coreFile, options);
                return HandleTable.Add(new NativeKvm(image, program));
            }
            catch (Exception e)
            {
                // libkvm's open errors read "<file>: <strerror>"; .NET's text for a missing file is not that.
                string message = e switch
                {
                    FileNotFoundException f => $"{f.FileName ?? coreFile}: No such file or directory",
                    DirectoryNotFoundException => $"{coreFile}: No such file or directory",
                    _ => ExportGuard.Describe(e),
                };
                if (program is not null)
                {
                    NativeKvm.WriteStandardError(program, message);
                }
                else
                {
                    NativeText.Copy(message, errorBuffer, NativeKvm.ErrorBufferSize);
                }

                Errno.Set(Errno.For(e));
                return 0;
            }
        }

        /// <summary>Wraps <c>kvm_open2</c>'s <c>int (*resolver)(const char *name, kvaddr_t *addr)</c>: 0 means found.</summary>
        public static SymbolResolver WrapResolver(delegate* unmanaged<byte*, ulong*, int> resolver) => name =>
        {
            int length = System.Text.Encoding.UTF8.GetMaxByteCount(name.Length) + 1;
            byte[] text = new byte[length];
            int written = System.Text.Encoding.UTF8.GetBytes(name, text);
            text[written] = 0;
            ulong address = 0;
            fixed (byte* p = text)
            {
                return resolver(p, &address) == 0 ? address : null;
            }
        };
    }
}
