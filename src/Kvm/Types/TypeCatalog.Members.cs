using System.Globalization;

namespace Kvm.Types;

/// <summary>Member lookup by dotted path.</summary>
public sealed partial class TypeCatalog
{
    /// <summary>
    /// Deepest nesting of anonymous struct/union members searched; real kernels nest a handful deep, and a bound keeps a
    /// corrupt blob whose anonymous member contains its own struct from recursing forever.
    /// </summary>
    private const int MaxAnonymousDepth = 32;

    /// <summary>
    /// Finds a member by path: a struct, union or typedef name (a <c>struct </c>/<c>union </c> prefix is accepted), then
    /// member names separated by dots, e.g. <c>task_struct.se.sum_exec_runtime</c>. Members of anonymous struct and union
    /// members are found as if they were direct members, as in C. A member name may carry array indexes, e.g.
    /// <c>fdtable.fd[0]</c> or <c>foo.bar[2].baz</c>.
    /// </summary>
    /// <returns>False when the struct or a member does not exist, or a component is neither a struct nor an array.</returns>
    /// <exception cref="CorruptImageException">The type graph is corrupt (too deep, or a size overflows).</exception>
    public bool TryGetMember(string path, out MemberLayout layout) => TryGetMember(path, out layout, out _);

    /// <summary>Finds a member by path, as <see cref="TryGetMember(string, out MemberLayout)"/> does.</summary>
    /// <exception cref="KvmException">
    /// The struct or a member is missing (<see cref="KvmErrorCode.KernelType"/>); the message names both.
    /// </exception>
    public MemberLayout GetMember(string path)
    {
        if (!TryGetMember(path, out var layout, out string? error))
        {
            throw new KvmException(KvmErrorCode.KernelType, $"{Source}: {error}");
        }

        return layout;
    }

    private bool TryGetMember(string path, out MemberLayout layout, out string? error)
    {
        ArgumentNullException.ThrowIfNull(path);
        layout = default;
        string[] parts = path.Split('.');
        var root = FindStruct(parts[0]);
        if (root is null || root.Kind == BtfKind.Forward)
        {
            error = root is null ? $"no struct or union named '{parts[0]}' in BTF" : $"struct '{parts[0]}' is only declared (FWD) in BTF";
            return false;
        }

        int typeId = root.Id;
        long bitOffset = 0;
        int bitSize = 0;
        string owner = parts[0];
        for (int i = 1; i < parts.Length; i++)
        {
            if (!TrySplitIndexes(parts[i], out string name, out var indexes))
            {
                error = $"bad member path component '{parts[i]}' in '{path}'";
                return false;
            }

            var container = Resolve(typeId);
            if (!container.IsStructOrUnion)
            {
                error = $"'{owner}' is {FormatTypeName(typeId)}, not a struct or union, so it has no member '{name}'";
                return false;
            }

            if (!TryFindMember(container, name, 0, out var member, out long memberBits))
            {
                error = $"struct '{owner}' ({FormatTypeName(container.Id)}) has no member '{name}'";
                return false;
            }

            typeId = member.TypeId;
            bitOffset += memberBits;
            bitSize = member.BitfieldSize;
            owner = owner + "." + name;
            foreach (long index in indexes)
            {
                var array = Resolve(typeId);
                if (array.Kind != BtfKind.Array)
                {
                    error = $"'{owner}' is {FormatTypeName(typeId)}, not an array, so it cannot be indexed";
                    return false;
                }

                var info = array.Array!.Value;
                if (info.ElementCount != 0 && index >= info.ElementCount)
                {
                    error = $"index {index} is past the end of '{owner}' ({info.ElementCount} elements)";
                    return false;
                }

                bitOffset += MultiplyOrThrow(MultiplyOrThrow(index, SizeOf(info.ElementTypeId), typeId), 8, typeId);
                typeId = info.ElementTypeId;
                bitSize = 0;
                owner += $"[{index}]";
            }
        }

        var resolved = Resolve(typeId);

        // Without kind_flag, a bitfield is described by its INT type's offset and bit count instead (btf.rst §2.2.1).
        if (bitSize == 0 && resolved.Kind == BtfKind.Int && (resolved.IntEncoding.Offset != 0 || resolved.IntEncoding.Bits != resolved.Size * 8))
        {
            bitOffset += resolved.IntEncoding.Offset;
            bitSize = resolved.IntEncoding.Bits;
        }

        layout = new MemberLayout(path, bitOffset >> 3, bitOffset, bitSize, typeId, resolved, SizeOf(typeId));
        error = null;
        return true;
    }

    /// <summary>Looks for a member by name, descending into anonymous struct/union members and adding their offsets.</summary>
    private bool TryFindMember(BtfType container, string name, int depth, out BtfMember member, out long bitOffset)
    {
        if (depth > MaxAnonymousDepth)
        {
            throw new CorruptImageException($"{Source}: BTF type id {container.Id}: anonymous members nest deeper than {MaxAnonymousDepth}");
        }

        foreach (var m in container.Members)
        {
            if (m.Name == name)
            {
                member = m;
                bitOffset = m.BitOffset;
                return true;
            }

            if (m.Name.Length == 0)
            {
                var inner = Resolve(m.TypeId);
                if (inner.IsStructOrUnion && TryFindMember(inner, name, depth + 1, out member, out long innerBits))
                {
                    bitOffset = m.BitOffset + innerBits;
                    return true;
                }
            }
        }

        member = default;
        bitOffset = 0;
        return false;
    }

    /// <summary>Splits <c>name[1][2]</c> into the name and its indexes.</summary>
    private static bool TrySplitIndexes(string component, out string name, out List<long> indexes)
    {
        indexes = [];
        int bracket = component.IndexOf('[', StringComparison.Ordinal);
        name = bracket < 0 ? component : component[..bracket];
        if (name.Length == 0)
        {
            return false;
        }

        while (bracket >= 0)
        {
            int close = component.IndexOf(']', bracket);
            if (close < 0 || !long.TryParse(component.AsSpan(bracket + 1, close - bracket - 1), NumberStyles.None, CultureInfo.InvariantCulture, out long index))
            {
                return false;
            }

            indexes.Add(index);
            if (close == component.Length - 1)
            {
                break;
            }

            if (component[close + 1] != '[')
            {
                return false;
            }

            bracket = close + 1;
        }

        return true;
    }
}
