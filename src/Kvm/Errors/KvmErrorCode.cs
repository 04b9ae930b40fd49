namespace Kvm;

/// <summary>
/// The category of a <see cref="KvmException"/>. Every exception type the library throws for a domain
/// failure maps to exactly one code, which the C ABI turns into libkvm's return values and errno.
/// </summary>
public enum KvmErrorCode
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>A kernel virtual or physical address cannot be read or written.</summary>
    MemoryFault,

    /// <summary>A symbol is not in any of the namelists.</summary>
    SymbolNotFound,

    /// <summary>The image is corrupt, truncated or exceeds a limit.</summary>
    CorruptImage,

    /// <summary>The image format, architecture, compression or operation is not supported.</summary>
    NotSupported,

    /// <summary>The image was not opened for writing.</summary>
    ReadOnly,

    /// <summary>The kernel layout (page tables, KASLR offset, paging mode) could not be determined.</summary>
    KernelLayout,

    /// <summary>A kernel type or field needed by a walker is not known.</summary>
    KernelType,
}
