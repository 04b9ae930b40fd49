using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary><c>user_t</c> (<c>struct kvm_user</c>): the SunOS u-area as Linux can fill it.</summary>
[StructLayout(LayoutKind.Sequential)]
[CName("user_t")]
internal unsafe struct SunUser
{
    /// <summary>The size of <c>u_psargs</c> (<c>PSARGSZ</c>).</summary>
    public const int PsArgsLength = 80;

    /// <summary>The size of <c>u_comm</c>.</summary>
    public const int CommandLength = 17;

    [CName("u_comm")] public fixed byte Command[CommandLength];
    [CName("u_psargs")] public fixed byte PsArgs[PsArgsLength];
    [CName("u_argc")] public int ArgumentCount;
    [CName("u_arg_start")] public ulong ArgStart;
    [CName("u_arg_end")] public ulong ArgEnd;
    [CName("u_env_start")] public ulong EnvStart;
    [CName("u_env_end")] public ulong EnvEnd;
}
