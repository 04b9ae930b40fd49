namespace Kvm.Types;

/// <summary>A member of a BTF struct or union (<c>struct btf_member</c>).</summary>
/// <param name="Name">The member name; empty for an anonymous struct or union member.</param>
/// <param name="TypeId">The member's type id.</param>
/// <param name="BitOffset">Offset of the member from the start of its struct, in bits.</param>
/// <param name="BitfieldSize">
/// Bitfield width in bits when the struct's kind_flag is set and the member is a bitfield; 0 otherwise
/// (Documentation/bpf/btf.rst §2.2.4: with kind_flag, offset bits 24-31 hold the size and bits 0-23 the offset).
/// </param>
public readonly record struct BtfMember(string Name, int TypeId, long BitOffset, int BitfieldSize);

/// <summary>An enumerator of a BTF ENUM or ENUM64.</summary>
/// <param name="Name">The enumerator name.</param>
/// <param name="Value">
/// The value: sign-extended for a signed ENUM (kind_flag set), zero-extended otherwise; an unsigned ENUM64 value above
/// <see cref="long.MaxValue"/> is stored as its bit pattern.
/// </param>
public readonly record struct BtfEnumValue(string Name, long Value);

/// <summary>A parameter of a BTF FUNC_PROTO (<c>struct btf_param</c>).</summary>
/// <param name="Name">The parameter name; empty when the compiler did not record one.</param>
/// <param name="TypeId">The parameter's type id.</param>
public readonly record struct BtfParameter(string Name, int TypeId);

/// <summary>The trailing data of a BTF ARRAY (<c>struct btf_array</c>).</summary>
/// <param name="ElementTypeId">The element type id.</param>
/// <param name="IndexTypeId">The index type id (an integer type).</param>
/// <param name="ElementCount">The number of elements; 0 for a flexible array member.</param>
public readonly record struct BtfArrayInfo(int ElementTypeId, int IndexTypeId, long ElementCount);

/// <summary>The encoding word of a BTF INT (include/uapi/linux/btf.h <c>BTF_INT_ENCODING</c>, <c>BTF_INT_OFFSET</c>, <c>BTF_INT_BITS</c>).</summary>
/// <param name="Bits">Number of value bits (bits 0-7).</param>
/// <param name="Offset">Bit offset of the value within the storage (bits 16-23); non-zero only for legacy bitfields.</param>
/// <param name="IsSigned"><c>BTF_INT_SIGNED</c>.</param>
/// <param name="IsChar"><c>BTF_INT_CHAR</c>.</param>
/// <param name="IsBool"><c>BTF_INT_BOOL</c>.</param>
public readonly record struct BtfIntEncoding(int Bits, int Offset, bool IsSigned, bool IsChar, bool IsBool);

/// <summary>An entry of a BTF DATASEC (<c>struct btf_var_secinfo</c>).</summary>
/// <param name="TypeId">The id of the VAR (or FUNC) the entry describes.</param>
/// <param name="Name">The name of that VAR or FUNC.</param>
/// <param name="Offset">Offset of the variable within the section, in bytes.</param>
/// <param name="Size">Size of the variable, in bytes.</param>
public readonly record struct BtfDataSectionEntry(int TypeId, string Name, long Offset, long Size);

/// <summary>Where a member, found by a dotted path, lies within its outermost struct.</summary>
/// <param name="Path">The path that was looked up, e.g. <c>task_struct.se.sum_exec_runtime</c>.</param>
/// <param name="Offset">Offset from the start of the outermost struct, in bytes (for a bitfield, the byte holding its first bit).</param>
/// <param name="BitOffset">Offset from the start of the outermost struct, in bits.</param>
/// <param name="BitSize">Bitfield width in bits; 0 when the member is not a bitfield.</param>
/// <param name="TypeId">The member's declared type id (before typedefs and qualifiers are skipped).</param>
/// <param name="Type">The member's type with typedefs, qualifiers and type tags skipped.</param>
/// <param name="Size">Size of the member's type, in bytes.</param>
public readonly record struct MemberLayout(string Path, long Offset, long BitOffset, int BitSize, int TypeId, BtfType Type, long Size);
