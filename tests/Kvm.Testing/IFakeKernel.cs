namespace Kvm.Testing;

/// <summary>
/// What <see cref="FakeKernel.FakeKernelObjects"/> needs from the fake kernel under it, whatever its architecture: the
/// physical memory, the kernel image's place, the direct (linear) map, fresh user page tables, a System.map and an ELF
/// core.
/// </summary>
public interface IFakeKernel
{
    /// <summary>Physical memory.</summary>
    PhysicalMemoryBuilder Memory { get; }

    /// <summary>The runtime address of <c>_text</c>.</summary>
    ulong TextVa { get; }

    /// <summary>The physical address of <c>_text</c>.</summary>
    ulong PhysicalLoad { get; }

    /// <summary>Bytes of the kernel image mapped at <see cref="TextVa"/>.</summary>
    ulong ImageSize { get; }

    /// <summary>The KASLR displacement: runtime minus link-time addresses of the image.</summary>
    ulong KaslrOffset { get; }

    /// <summary>The virtual address at which physical address 0 would sit in the direct map; the first 1 GiB is mapped.</summary>
    ulong PageOffsetBase { get; }

    /// <summary>A link-time System.map of the base kernel.</summary>
    string SystemMap { get; }

    /// <summary>Empty user page tables of this architecture (their root is a page in physical memory).</summary>
    IFakePageTables NewUserTables();

    /// <summary>The fake kernel as an ELF core with its VMCOREINFO note.</summary>
    byte[] ToElf();
}
