using System.Runtime.InteropServices;

namespace Kvm.Native.Interop;

/// <summary>
/// Native memory a descriptor owns and hands to C callers (the <c>kvm_getprocs</c> array, the argv vector…): it
/// stays valid until it is replaced by the next call of the same kind, or the descriptor is closed.
/// </summary>
internal sealed unsafe class OwnedBuffer : IDisposable
{
    /// <summary>The current block, or null.</summary>
    public void* Pointer { get; private set; }

    /// <summary>Its size in bytes.</summary>
    public nuint Length { get; private set; }

    /// <summary>Frees the current block and allocates a zeroed one of <paramref name="length"/> bytes.</summary>
    public void* Replace(nuint length)
    {
        Free();
        Pointer = NativeMemory.AllocZeroed(length == 0 ? 1 : length);
        Length = length;
        return Pointer;
    }

    /// <summary>True when <paramref name="address"/> lies inside the current block.</summary>
    public bool Contains(void* address) =>
        Pointer is not null && (byte*)address >= (byte*)Pointer && (byte*)address < (byte*)Pointer + Length;

    /// <summary>Frees the current block.</summary>
    public void Free()
    {
        if (Pointer is not null)
        {
            NativeMemory.Free(Pointer);
            Pointer = null;
            Length = 0;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => Free();
}
