namespace Kvm.Testing.FakeKernel;

/// <summary>Emits the BTF that describes <see cref="FakeKernelLayout"/>, optionally leaving members out.</summary>
public static class FakeKernelBtf
{
    /// <summary>
    /// Builds the blob; <paramref name="omit"/> lists <c>struct.member</c> entries to leave out, and
    /// <paramref name="sizes"/> overrides structure sizes (BTF that disagrees with the objects, as another kernel's would).
    /// </summary>
    /// <param name="omit">Members (<c>struct.member</c>) or whole definitions (by name) to leave out.</param>
    /// <param name="sizes">Structure sizes to state instead of the layout's.</param>
    /// <param name="memberTypes">Member types (<c>struct.member</c> → type) to state instead of the layout's.</param>
    public static byte[] Build(IReadOnlyCollection<string>? omit = null, IReadOnlyDictionary<string, int>? sizes = null, IReadOnlyDictionary<string, string>? memberTypes = null)
    {
        memberTypes ??= new Dictionary<string, string>();
        omit ??= [];
        sizes ??= new Dictionary<string, int>();
        var b = new BtfBuilder();
        var ids = new Dictionary<string, int>
        {
            ["char"] = b.Int("char", 1, 8, signed: true, isChar: true),
            ["u8"] = b.Int("unsigned char", 1, 8),
            ["short"] = b.Int("short int", 2, 16, signed: true),
            ["u16"] = b.Int("short unsigned int", 2, 16),
            ["int"] = b.Int("int", 4, 32, signed: true),
            ["uint"] = b.Int("unsigned int", 4, 32),
            ["long"] = b.Int("long int", 8, 64, signed: true),
            ["ulong"] = b.Int("long unsigned int", 8, 64),
            ["u64"] = b.Int("long long unsigned int", 8, 64),
            ["bool"] = b.Int("_Bool", 1, 8, isBool: true),
        };
        ids["*"] = b.Pointer(0);

        int Resolve(string type)
        {
            if (ids.TryGetValue(type, out int id))
            {
                return id;
            }

            // A typedef used by a member (sigset_t) is emitted on first use; its target is defined before.
            if (FakeKernelLayout.Typedefs.FirstOrDefault(t => t.Name == type) is { Name: not null } typedef)
            {
                id = b.Typedef(typedef.Name, Resolve(typedef.Target));
                ids[type] = id;
                return id;
            }

            int bracket = type.IndexOf('[', StringComparison.Ordinal);
            if (bracket > 0)
            {
                uint count = uint.Parse(type[(bracket + 1)..^1], System.Globalization.CultureInfo.InvariantCulture);
                id = b.Array(Resolve(type[..bracket]), ids["int"], count);
                ids[type] = id;
                return id;
            }

            throw new KeyNotFoundException($"fake BTF: type '{type}' is used before it is defined");
        }

        foreach (var def in FakeKernelLayout.Defs.Where(d => !omit.Contains(d.Name)))
        {
            var members = def.Members
                .Where(m => !omit.Contains($"{def.Name}.{m.Name}"))
                .Select(m => (m.Name, Resolve(memberTypes.TryGetValue($"{def.Name}.{m.Name}", out string? t) ? t : m.Type), (m.Offset * 8) + m.Bit, m.Bits))
                .ToArray();
            string name = def.Name.StartsWith('@') ? string.Empty : def.Name;
            int size = sizes.TryGetValue(def.Name, out int s) ? s : def.Size;
            ids[def.Name] = def.Union ? b.Union(name, size, members) : b.Struct(name, size, members);
        }

        foreach (var (name, target) in FakeKernelLayout.Typedefs.Where(t => !ids.ContainsKey(t.Name)))
        {
            ids[name] = b.Typedef(name, Resolve(target));
        }

        foreach (var (name, values) in FakeKernelLayout.Enums)
        {
            b.Enum(name, 4, false, values);
        }

        return b.Build();
    }
}
