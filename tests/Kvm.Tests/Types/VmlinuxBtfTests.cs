using System.Diagnostics;
using System.Globalization;
using Kvm.Types;
using Xunit.Abstractions;

namespace Kvm.Tests.Types;

/// <summary>The real kernel's BTF (<c>/sys/kernel/btf/vmlinux</c>) against bpftool's raw dump of the same file.</summary>
public sealed class VmlinuxBtfTests(ITestOutputHelper output)
{
    private static readonly Lazy<TypeCatalog> s_catalog = new(() => TypeCatalog.Load(BpftoolOracle.VmlinuxBtf));

    private static TypeCatalog Catalog => s_catalog.Value;

    private static readonly Dictionary<string, BtfKind> s_kinds = new()
    {
        ["INT"] = BtfKind.Int, ["PTR"] = BtfKind.Pointer, ["ARRAY"] = BtfKind.Array, ["STRUCT"] = BtfKind.Struct, ["UNION"] = BtfKind.Union,
        ["ENUM"] = BtfKind.Enum, ["FWD"] = BtfKind.Forward, ["TYPEDEF"] = BtfKind.Typedef, ["VOLATILE"] = BtfKind.Volatile,
        ["CONST"] = BtfKind.Const, ["RESTRICT"] = BtfKind.Restrict, ["FUNC"] = BtfKind.Function, ["FUNC_PROTO"] = BtfKind.FunctionProto,
        ["VAR"] = BtfKind.Variable, ["DATASEC"] = BtfKind.DataSection, ["FLOAT"] = BtfKind.Float, ["DECL_TAG"] = BtfKind.DeclTag,
        ["TYPE_TAG"] = BtfKind.TypeTag, ["ENUM64"] = BtfKind.Enum64,
    };

    [VmlinuxBtfFact]
    public void Parse_RealKernelBtf_ReportsTime()
    {
        var data = File.ReadAllBytes(BpftoolOracle.VmlinuxBtf);
        TypeCatalog.Parse(data, "warm-up");
        var sw = Stopwatch.StartNew();
        var catalog = TypeCatalog.Parse(data, BpftoolOracle.VmlinuxBtf);
        double parseMs = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        bool found = catalog.TryGetMember("task_struct.mm", out _);
        double firstLookupMs = sw.Elapsed.TotalMilliseconds;
        output.WriteLine($"parsed {catalog.Count} types from {data.Length} bytes in {parseMs:F1} ms; first member lookup (builds name index) {firstLookupMs:F1} ms");
        Assert.True(found);
    }

    [BpftoolFact]
    public void Count_MatchesBpftool()
    {
        Assert.Equal(BpftoolOracle.Types.Keys.Max(), Catalog.Count);
        Assert.Equal(BpftoolOracle.Types.Count, Catalog.Count);
    }

    [BpftoolFact]
    public void EveryType_KindAndName_MatchBpftool()
    {
        foreach (var o in BpftoolOracle.Types.Values)
        {
            var t = Catalog.GetType(o.Id);
            Assert.True(s_kinds[o.Kind] == t.Kind, $"[{o.Id}] kind {t.Kind}, bpftool {o.Kind}");
            Assert.True(o.Name == t.Name, $"[{o.Id}] name '{t.Name}', bpftool '{o.Name}'");
        }
    }

    [BpftoolFact]
    public void StructsAndUnions_SizeAndEveryMember_MatchBpftool()
    {
        int checkedStructs = 0;
        foreach (var o in BpftoolOracle.Types.Values.Where(o => o.Kind is "STRUCT" or "UNION"))
        {
            var t = Catalog.GetType(o.Id);
            Assert.Equal(o.Long("size"), t.Size);
            Assert.Equal(o.Long("vlen"), t.Members.Count);
            for (int i = 0; i < o.Items.Count; i++)
            {
                var (name, attrs) = o.Items[i];
                var m = t.Members[i];
                string where = $"[{o.Id}] {o.Name}.{name}";
                Assert.True(name == m.Name, where);
                Assert.True(long.Parse(attrs["type_id"], CultureInfo.InvariantCulture) == m.TypeId, where);
                Assert.True(long.Parse(attrs["bits_offset"], CultureInfo.InvariantCulture) == m.BitOffset, where);
                long bitfield = attrs.TryGetValue("bitfield_size", out var b) ? long.Parse(b, CultureInfo.InvariantCulture) : 0;
                Assert.True(bitfield == m.BitfieldSize, where);
            }

            checkedStructs++;
        }

        Assert.True(checkedStructs > 1000, $"only {checkedStructs} structs in the oracle");
    }

    [BpftoolFact]
    public void Enums_SignednessAndValues_MatchBpftool()
    {
        foreach (var o in BpftoolOracle.Types.Values.Where(o => o.Kind is "ENUM" or "ENUM64"))
        {
            var t = Catalog.GetType(o.Id);
            Assert.Equal(o.Long("size"), t.Size);
            Assert.Equal(o.Attributes["encoding"] == "SIGNED", t.KindFlag);
            Assert.Equal(o.Items.Count, t.EnumValues.Count);
            for (int i = 0; i < o.Items.Count; i++)
            {
                string text = o.Items[i].Attributes["val"];
                long expected = text.EndsWith("ULL", StringComparison.Ordinal)
                    ? unchecked((long)ulong.Parse(text[..^3], CultureInfo.InvariantCulture))
                    : long.Parse(text.TrimEnd('L'), CultureInfo.InvariantCulture);
                Assert.True(o.Items[i].Name == t.EnumValues[i].Name, $"[{o.Id}] enumerator {i}");
                Assert.True(expected == t.EnumValues[i].Value, $"[{o.Id}] {o.Items[i].Name} = {t.EnumValues[i].Value}, bpftool {text}");
            }
        }
    }

    [BpftoolFact]
    public void OtherKinds_Fields_MatchBpftool()
    {
        foreach (var o in BpftoolOracle.Types.Values)
        {
            var t = Catalog.GetType(o.Id);
            string where = $"[{o.Id}] {o.Kind} '{o.Name}'";
            switch (o.Kind)
            {
                case "INT":
                    Assert.True(o.Long("size") == t.Size, where);
                    Assert.True(o.Long("nr_bits") == t.IntEncoding.Bits, where);
                    Assert.True(o.Long("bits_offset") == t.IntEncoding.Offset, where);
                    Assert.True((o.Attributes["encoding"] == "SIGNED") == t.IntEncoding.IsSigned, where);
                    Assert.True((o.Attributes["encoding"] == "BOOL") == t.IntEncoding.IsBool, where);
                    Assert.True((o.Attributes["encoding"] == "CHAR") == t.IntEncoding.IsChar, where);
                    break;
                case "PTR" or "TYPEDEF" or "VOLATILE" or "CONST" or "RESTRICT" or "TYPE_TAG" or "FUNC" or "VAR" or "DECL_TAG":
                    Assert.True(o.Long("type_id") == t.ReferencedTypeId, where);
                    break;
                case "ARRAY":
                    Assert.True(o.Long("type_id") == t.Array!.Value.ElementTypeId, where);
                    Assert.True(o.Long("index_type_id") == t.Array.Value.IndexTypeId, where);
                    Assert.True(o.Long("nr_elems") == t.Array.Value.ElementCount, where);
                    break;
                case "FUNC_PROTO":
                    Assert.True(o.Long("ret_type_id") == t.ReferencedTypeId, where);
                    Assert.True(o.Long("vlen") == t.Parameters.Count + (t.IsVariadic ? 1 : 0), where);
                    for (int i = 0; i < t.Parameters.Count; i++)
                    {
                        Assert.True(o.Items[i].Name == t.Parameters[i].Name, where);
                        Assert.True(long.Parse(o.Items[i].Attributes["type_id"], CultureInfo.InvariantCulture) == t.Parameters[i].TypeId, where);
                    }

                    break;
                case "FWD":
                    Assert.True((o.Attributes["fwd_kind"] == "union") == t.IsUnionForward, where);
                    break;
                case "FLOAT":
                    Assert.True(o.Long("size") == t.Size, where);
                    break;
                case "DATASEC":
                    Assert.True(o.Long("size") == t.Size, where);
                    Assert.True(o.Items.Count == t.Variables.Count, where);
                    for (int i = 0; i < o.Items.Count; i++)
                    {
                        var (name, attrs) = o.Items[i];
                        Assert.Equal(name, t.Variables[i].Name);
                        Assert.Equal(long.Parse(attrs["type_id"], CultureInfo.InvariantCulture), t.Variables[i].TypeId);
                        Assert.Equal(long.Parse(attrs["offset"], CultureInfo.InvariantCulture), t.Variables[i].Offset);
                        Assert.Equal(long.Parse(attrs["size"], CultureInfo.InvariantCulture), t.Variables[i].Size);
                    }

                    break;
            }

            if (o.Kind is "FUNC" or "VAR")
            {
                int linkage = o.Attributes["linkage"] switch { "static" => 0, "global" => 1, "extern" => 2, var s => throw new InvalidOperationException(s) };
                Assert.True(linkage == t.Linkage, where);
            }

            if (o.Kind == "DECL_TAG")
            {
                Assert.True(o.Long("component_idx") == t.ComponentIndex, where);
            }
        }
    }

    [BpftoolFact]
    public void TryGetMember_NestedAndAnonymousPaths_MatchOffsetsDerivedFromBpftool()
    {
        string[] paths =
        [
            "list_head.prev", "task_struct.mm", "task_struct.pid", "task_struct.comm", "task_struct.se.sum_exec_runtime",
            "task_struct.tasks", "mm_struct.arg_start", "mm_struct.pgd", "file.f_path.dentry", "sched_entity.load.weight",
        ];
        int compared = 0;
        foreach (string path in paths)
        {
            var expected = OracleMember(path);
            if (expected is null)
            {
                continue;
            }

            compared++;

            Assert.True(Catalog.TryGetMember(path, out var layout), path);
            Assert.Equal(expected.Value.Bits, layout.BitOffset);
            Assert.Equal(expected.Value.Bits / 8, layout.Offset);
            Assert.Equal(expected.Value.TypeId, layout.TypeId);
        }

        Assert.True(compared >= 8, $"only {compared} of {paths.Length} paths exist in bpftool's dump");
    }

    [BpftoolFact]
    public void FindStruct_TaskStruct_SizeMatchesBpftool()
    {
        var expected = BpftoolOracle.Types.Values.Single(o => o.Kind == "STRUCT" && o.Name == "task_struct");
        var t = Catalog.FindStruct("task_struct")!;
        Assert.Equal(expected.Id, t.Id);
        Assert.True(Catalog.TryGetSize("struct task_struct", out long size));
        Assert.Equal(expected.Long("size"), size);
    }

    [VmlinuxBtfFact]
    public void Lookups_WellKnownKernelFacts()
    {
        Assert.Equal("struct task_struct *", Catalog.FormatTypeName(Catalog.GetMember("task_struct.parent").TypeId));
        Assert.Equal(16, Catalog.GetMember("list_head.prev").Size + 8);
        Assert.True(Catalog.TryGetSize("struct list_head", out long size));
        Assert.Equal(16, size);
        Assert.NotEmpty(Catalog.GetDataSection(".data..percpu"));
        Assert.True(Catalog.TryGetEnumValue("TASK_COMM_LEN", out long comm));
        Assert.Equal(16, comm);
    }

    /// <summary>
    /// Follows a dotted path through bpftool's own member listing, descending into anonymous members, to get the expected
    /// bit offset and type id; null when the struct or member does not exist on this kernel.
    /// </summary>
    private static (long Bits, int TypeId)? OracleMember(string path)
    {
        var parts = path.Split('.');
        var types = BpftoolOracle.Types;
        var root = types.Values.FirstOrDefault(o => o.Kind is "STRUCT" or "UNION" && o.Name == parts[0]);
        if (root is null)
        {
            return null;
        }

        long bits = 0;
        int typeId = root.Id;
        foreach (string name in parts.Skip(1))
        {
            var container = Skip(types, typeId);
            var found = Find(types, container, name);
            if (found is null)
            {
                return null;
            }

            bits += found.Value.Bits;
            typeId = found.Value.TypeId;
        }

        return (bits, typeId);
    }

    private static (long Bits, int TypeId)? Find(Dictionary<int, OracleType> types, OracleType container, string name)
    {
        foreach (var (memberName, attrs) in container.Items)
        {
            long off = long.Parse(attrs["bits_offset"], CultureInfo.InvariantCulture);
            int type = int.Parse(attrs["type_id"], CultureInfo.InvariantCulture);
            if (memberName == name)
            {
                return (off, type);
            }

            var inner = Skip(types, type);
            if (memberName.Length == 0 && inner.Kind is "STRUCT" or "UNION" && Find(types, inner, name) is { } hit)
            {
                return (off + hit.Bits, hit.TypeId);
            }
        }

        return null;
    }

    private static OracleType Skip(Dictionary<int, OracleType> types, int id)
    {
        var t = types[id];
        while (t.Kind is "TYPEDEF" or "CONST" or "VOLATILE" or "RESTRICT" or "TYPE_TAG")
        {
            t = types[(int)t.Long("type_id")];
        }

        return t;
    }
}
