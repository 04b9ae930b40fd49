namespace Kvm.Cli;

/// <summary>The writers a run prints to; passed to every command so nothing is kept in statics.</summary>
internal sealed record CliIo(TextWriter Out, TextWriter Error);
