namespace Kvm.Types;

/// <summary>
/// One decoded BTF type record. Which properties are meaningful depends on <see cref="Kind"/>; the others hold
/// 0, <see langword="null"/> or an empty list. Instances are immutable and shared by a <see cref="TypeCatalog"/>.
/// </summary>
public sealed class BtfType
{
    internal BtfType(int id, BtfKind kind, string name, bool kindFlag)
    {
        Id = id;
        Kind = kind;
        Name = name;
        KindFlag = kindFlag;
    }

    /// <summary>The type id: the 1-based position of the record in the type section; 0 is <c>void</c>.</summary>
    public int Id { get; }

    /// <summary>The kind of the record.</summary>
    public BtfKind Kind { get; }

    /// <summary>The name; empty for anonymous types and for kinds that carry no name.</summary>
    public string Name { get; }

    /// <summary>
    /// Bit 31 of <c>info</c>: bitfield-encoded member offsets (STRUCT, UNION), union (FWD), signed (ENUM, ENUM64).
    /// </summary>
    public bool KindFlag { get; }

    /// <summary>Size in bytes for INT, STRUCT, UNION, ENUM, ENUM64, FLOAT and DATASEC; 0 for other kinds.</summary>
    public long Size { get; internal init; }

    /// <summary>
    /// The type this one refers to: the target of PTR, TYPEDEF, VOLATILE, CONST, RESTRICT and TYPE_TAG, the FUNC_PROTO of a
    /// FUNC, the type of a VAR, the tagged type of a DECL_TAG and the return type of a FUNC_PROTO; 0 for other kinds.
    /// </summary>
    public int ReferencedTypeId { get; internal init; }

    /// <summary>The members of a STRUCT or UNION, in declaration order.</summary>
    public IReadOnlyList<BtfMember> Members { get; internal init; } = [];

    /// <summary>The enumerators of an ENUM or ENUM64, in declaration order.</summary>
    public IReadOnlyList<BtfEnumValue> EnumValues { get; internal init; } = [];

    /// <summary>The element type, index type and element count of an ARRAY; <see langword="null"/> for other kinds.</summary>
    public BtfArrayInfo? Array { get; internal init; }

    /// <summary>
    /// The parameters of a FUNC_PROTO. The trailing varargs marker (a nameless parameter of type 0) is not listed; see
    /// <see cref="IsVariadic"/>.
    /// </summary>
    public IReadOnlyList<BtfParameter> Parameters { get; internal init; } = [];

    /// <summary>True for a FUNC_PROTO whose last parameter is the varargs marker (Documentation/bpf/btf.rst §2.2.13).</summary>
    public bool IsVariadic { get; internal init; }

    /// <summary>The encoding word of an INT; default for other kinds.</summary>
    public BtfIntEncoding IntEncoding { get; internal init; }

    /// <summary>The linkage of a FUNC (0 static, 1 global, 2 extern) or VAR (0 static, 1 global, 2 extern); 0 for other kinds.</summary>
    public int Linkage { get; internal init; }

    /// <summary>
    /// The component a DECL_TAG applies to: -1 for the tagged type or variable itself, otherwise the index of the struct
    /// member or function parameter; 0 for other kinds.
    /// </summary>
    public int ComponentIndex { get; internal init; }

    /// <summary>The entries of a DATASEC, in declaration order.</summary>
    public IReadOnlyList<BtfDataSectionEntry> Variables { get; internal init; } = [];

    /// <summary>True for a FWD of a union (kind_flag set); false for other kinds.</summary>
    public bool IsUnionForward => Kind == BtfKind.Forward && KindFlag;

    /// <summary>True for a STRUCT or UNION.</summary>
    public bool IsStructOrUnion => Kind is BtfKind.Struct or BtfKind.Union;

    /// <summary>True for an ENUM or ENUM64.</summary>
    public bool IsEnum => Kind is BtfKind.Enum or BtfKind.Enum64;

    /// <inheritdoc/>
    public override string ToString() => $"[{Id}] {Kind} '{Name}'";
}
