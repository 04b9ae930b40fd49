namespace Kvm.FreeBsd;

/// <summary>
/// A FreeBSD kernel's virtual network stack (VNET, <c>options VIMAGE</c>) as lib/libkvm/kvm_vnet.c
/// <c>_kvm_vnet_selectpid</c> selects it: the linker set <c>set_vnet</c> (<c>[__start_set_vnet, __stop_set_vnet)</c>),
/// where every <c>VNET_DEFINE</c>d variable lives under the name <c>vnet_entry_NAME</c>, and the <c>struct vnet</c> of a
/// process — <c>p_ucred->cr_prison->pr_vnet</c> — whose <c>vnet_data_base</c> relocates those variables to its copy
/// (net/vnet.h). On a crash dump libkvm always takes <c>proc0</c>'s (its <c>dumptid</c> check), whose prison is
/// <c>prison0</c> and whose vnet is <c>vnet0</c>, the host's.
/// </summary>
/// <param name="Start"><c>__start_set_vnet</c>.</param>
/// <param name="Stop"><c>__stop_set_vnet</c>.</param>
/// <param name="Vnet">The address of the selected <c>struct vnet</c>.</param>
/// <param name="DataBase">Its <c>vnet_data_base</c>.</param>
/// <param name="Pid">The process whose vnet it is (0: <c>proc0</c>).</param>
internal sealed record FreeBsdVirtualNetwork(ulong Start, ulong Stop, ulong Vnet, ulong DataBase, int Pid)
{
    /// <summary>net/vnet.h <c>VNET_SYMPREFIX</c>.</summary>
    public const string SymbolPrefix = "vnet_entry_";

    /// <summary>net/vnet.h <c>VNET_MAGIC_N</c>.</summary>
    public const uint MagicNumber = 0x3e0d8f29;

    /// <summary>
    /// What <c>_kvm_vnet_validaddr</c> makes of a <c>vnet_entry_</c> symbol's value: inside the set, the value plus
    /// <c>vnet_data_base</c>; 0 and values outside, unchanged.
    /// </summary>
    public ulong ValidateAddress(ulong value, int pointerSize) =>
        value == 0 || value < Start || value >= Stop ? value : FreeBsdDynamicPerCpu.Add(value, DataBase, pointerSize);

    /// <summary>
    /// Selects the vnet of the process at <paramref name="proc"/> (pid <paramref name="pid"/>), checking what
    /// <c>_kvm_vnet_selectpid</c> checks: the symbols <c>__start_set_vnet</c>, <c>__stop_set_vnet</c> and
    /// <c>vnet_head</c> (a kernel without <c>VIMAGE</c> has none of them), a credential, a prison, a vnet, and the
    /// vnet's <c>vnet_magic_n</c>.
    /// </summary>
    /// <exception cref="SymbolNotFoundException">A symbol is missing (the exception names it).</exception>
    /// <exception cref="CorruptImageException">A pointer of the chain is NULL or the magic number is wrong; the message says which.</exception>
    public static FreeBsdVirtualNetwork Select(FreeBsdKernelReader k, ulong proc, int pid)
    {
        ulong Require(string name) => k.Symbol(name) ?? throw new SymbolNotFoundException(name, "needed for VNET variables (lib/libkvm/kvm_vnet.c; a kernel without options VIMAGE has none)");

        ulong start = Require("__start_set_vnet");
        ulong stop = Require("__stop_set_vnet");
        Require("vnet_head");
        if (stop < start)
        {
            throw new CorruptImageException($"__stop_set_vnet (0x{stop:x}) lies below __start_set_vnet (0x{start:x})");
        }

        string who = pid == 0 ? "proc0" : $"pid {pid}";
        ulong cred = k.Pointer(k.ReadStruct("proc", proc), "proc.p_ucred");
        if (cred == 0)
        {
            throw new CorruptImageException($"the vnet of {who}: struct proc 0x{proc:x} has no credential (p_ucred is NULL)");
        }

        ulong prison = k.Pointer(k.ReadStruct("ucred", cred), "ucred.cr_prison");
        if (prison == 0)
        {
            throw new CorruptImageException($"the vnet of {who}: no jail (struct ucred 0x{cred:x} has cr_prison NULL)");
        }

        ulong vnet = k.Pointer(k.ReadStruct("prison", prison), "prison.pr_vnet");
        if (vnet == 0)
        {
            throw new CorruptImageException($"the vnet of {who}: no vnet (struct prison 0x{prison:x} has pr_vnet NULL)");
        }

        var data = k.ReadStruct("vnet", vnet);
        long magic = k.Int(data, "vnet.vnet_magic_n") & 0xffffffff;
        if (magic != MagicNumber)
        {
            throw new CorruptImageException($"the vnet of {who}: invalid vnet magic# 0x{magic:x} in struct vnet 0x{vnet:x} (VNET_MAGIC_N is 0x{MagicNumber:x})");
        }

        return new FreeBsdVirtualNetwork(start, stop, vnet, k.Pointer(data, "vnet.vnet_data_base"), pid);
    }
}
