namespace Kvm.Types;

/// <summary>
/// The kind of a BTF type record: bits 24-28 of <c>btf_type.info</c>, numbered as the <c>BTF_KIND_*</c> constants of
/// include/uapi/linux/btf.h.
/// </summary>
public enum BtfKind
{
    /// <summary>Type id 0, <c>void</c>; never stored as a record.</summary>
    Void = 0,

    /// <summary><c>BTF_KIND_INT</c>: an integer, with an encoding word.</summary>
    Int = 1,

    /// <summary><c>BTF_KIND_PTR</c>: a pointer.</summary>
    Pointer = 2,

    /// <summary><c>BTF_KIND_ARRAY</c>: an array.</summary>
    Array = 3,

    /// <summary><c>BTF_KIND_STRUCT</c>: a structure.</summary>
    Struct = 4,

    /// <summary><c>BTF_KIND_UNION</c>: a union.</summary>
    Union = 5,

    /// <summary><c>BTF_KIND_ENUM</c>: an enumeration with 32-bit values.</summary>
    Enum = 6,

    /// <summary><c>BTF_KIND_FWD</c>: a forward declaration of a struct (kind_flag 0) or union (kind_flag 1).</summary>
    Forward = 7,

    /// <summary><c>BTF_KIND_TYPEDEF</c>: a typedef.</summary>
    Typedef = 8,

    /// <summary><c>BTF_KIND_VOLATILE</c>: the <c>volatile</c> qualifier.</summary>
    Volatile = 9,

    /// <summary><c>BTF_KIND_CONST</c>: the <c>const</c> qualifier.</summary>
    Const = 10,

    /// <summary><c>BTF_KIND_RESTRICT</c>: the <c>restrict</c> qualifier.</summary>
    Restrict = 11,

    /// <summary><c>BTF_KIND_FUNC</c>: a function, naming a <see cref="FunctionProto"/>.</summary>
    Function = 12,

    /// <summary><c>BTF_KIND_FUNC_PROTO</c>: a function signature.</summary>
    FunctionProto = 13,

    /// <summary><c>BTF_KIND_VAR</c>: a variable.</summary>
    Variable = 14,

    /// <summary><c>BTF_KIND_DATASEC</c>: a data section listing variables.</summary>
    DataSection = 15,

    /// <summary><c>BTF_KIND_FLOAT</c>: a floating-point type.</summary>
    Float = 16,

    /// <summary><c>BTF_KIND_DECL_TAG</c>: a declaration tag (<c>btf_decl_tag</c> attribute).</summary>
    DeclTag = 17,

    /// <summary><c>BTF_KIND_TYPE_TAG</c>: a type tag (<c>btf_type_tag</c> attribute such as <c>rcu</c> or <c>user</c>).</summary>
    TypeTag = 18,

    /// <summary><c>BTF_KIND_ENUM64</c>: an enumeration with 64-bit values.</summary>
    Enum64 = 19,
}
