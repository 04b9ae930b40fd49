namespace Kvm;

/// <summary>The kernel's <c>struct new_utsname</c>, as <c>uname</c> reports it.</summary>
/// <param name="SysName">sysname, e.g. <c>Linux</c>.</param>
/// <param name="NodeName">nodename (host name).</param>
/// <param name="Release">release, e.g. <c>6.1.0-26-amd64</c>.</param>
/// <param name="Version">version, e.g. <c>#1 SMP PREEMPT_DYNAMIC Debian 6.1.112-1 (2024-09-30)</c>.</param>
/// <param name="Machine">machine, e.g. <c>x86_64</c>.</param>
/// <param name="DomainName">domainname.</param>
public sealed record Utsname(string SysName, string NodeName, string Release, string Version, string Machine, string DomainName);
