using Kvm.Testing;
using Kvm.Translation;

namespace Kvm.Tests.Translation;

/// <summary>
/// A page-granular <see cref="IPhysicalSource"/> over a <see cref="PhysicalMemoryBuilder"/>: a read succeeds only when
/// every page it touches was written. Counts reads so tests can check what the walker touched.
/// </summary>
internal sealed class DictionaryPhysicalSource(PhysicalMemoryBuilder memory) : IPhysicalSource
{
    private int _reads;

    public int Reads => _reads;

    public List<ulong> ReadAddresses { get; } = [];

    public bool TryReadPhysical(ulong physicalAddress, Span<byte> buffer)
    {
        Interlocked.Increment(ref _reads);
        lock (ReadAddresses)
        {
            ReadAddresses.Add(physicalAddress);
        }

        for (int done = 0; done < buffer.Length;)
        {
            ulong pa = physicalAddress + (ulong)done;
            if (!memory.Pages.TryGetValue(pa & ~0xfffUL, out var page))
            {
                return false;
            }

            int offset = (int)(pa & 0xfff);
            int n = Math.Min(4096 - offset, buffer.Length - done);
            page.AsSpan(offset, n).CopyTo(buffer[done..]);
            done += n;
        }

        return true;
    }
}
