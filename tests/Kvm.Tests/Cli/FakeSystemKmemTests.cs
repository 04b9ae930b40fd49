using Kvm.Cli;
using Kvm.Testing;
using Kvm.Tests.Linux;

namespace Kvm.Tests.Cli;

/// <summary>A base for kmem tests on <see cref="FakeSystem"/>: its ELF core and System.map in temporary files, and a runner.</summary>
public abstract class FakeSystemKmemTests : IDisposable
{
    private readonly TempFile _elf;
    private readonly TempFile _map;

    /// <summary>Writes the fake system's ELF core and System.map.</summary>
    protected FakeSystemKmemTests()
    {
        var sys = new FakeSystem();
        _elf = new TempFile(sys.K.ToElf());
        _map = new TempFile(sys.K.SystemMap);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _elf.Dispose();
        _map.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Runs kmem with <c>-M core -N System.map</c> and <paramref name="command"/>.</summary>
    protected (int Exit, string Out, string Err) Run(params string[] command)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.Run([.. new[] { "-M", _elf.Path, "-N", _map.Path }, .. command], output, error);
        return (exit, output.ToString(), error.ToString());
    }
}
