using System.Buffers.Binary;

namespace Kvm.Types;

/// <summary>Record indexing, validation and decoding.</summary>
public sealed partial class TypeCatalog
{
    /// <summary>Highest kind this reader knows: <c>BTF_KIND_ENUM64</c> (include/uapi/linux/btf.h).</summary>
    private const int MaxKnownKind = (int)BtfKind.Enum64;

    /// <summary>
    /// One pass over the type section recording where each record starts. The size of a record follows from its kind and
    /// vlen (btf.rst §2.2), so a kind this reader does not know makes every later record unreachable and fails the blob.
    /// </summary>
    private static int[] IndexRecords(ReadOnlySpan<byte> types, bool bigEndian, string source, long baseOffset, KvmLimits limits)
    {
        // Every record is at least 12 bytes, so this bounds the allocation by the blob size.
        var offsets = new List<int>(types.Length / RecordSize);
        int off = 0;
        while (off < types.Length)
        {
            int id = offsets.Count + 1;
            if (types.Length - off < RecordSize)
            {
                throw new CorruptImageException(
                    $"{source}: BTF type id {id} at byte offset {baseOffset + off}: truncated record ({types.Length - off} bytes left, need {RecordSize})");
            }

            if (offsets.Count >= limits.MaxBtfTypes)
            {
                throw new CorruptImageException($"{source}: BTF type section holds more than the limit of {limits.MaxBtfTypes} types");
            }

            var info = types.Slice(off + 4, 4);
            uint word = bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(info) : BinaryPrimitives.ReadUInt32LittleEndian(info);
            int kind = (int)((word >> 24) & 0x1f);
            int vlen = (int)(word & 0xffff);
            long trailing = kind switch
            {
                1 or 14 or 17 => 4,                 // INT encoding, btf_var, btf_decl_tag
                3 => 12,                            // btf_array
                4 or 5 or 15 or 19 => 12L * vlen,   // btf_member, btf_var_secinfo, btf_enum64
                6 or 13 => 8L * vlen,               // btf_enum, btf_param
                2 or 7 or 8 or 9 or 10 or 11 or 12 or 16 or 18 => 0,
                _ => throw new CorruptImageException(
                    $"{source}: BTF type id {id} at byte offset {baseOffset + off}: unknown kind {kind} (known kinds are 1..{MaxKnownKind}); " +
                    "its record size cannot be known, so the blob cannot be read"),
            };

            if (RecordSize + trailing > types.Length - off)
            {
                throw new CorruptImageException(
                    $"{source}: BTF type id {id} ({(BtfKind)kind}, vlen {vlen}) at byte offset {baseOffset + off}: record of {RecordSize + trailing} bytes " +
                    $"runs past the end of the type section ({types.Length - off} bytes left)");
            }

            offsets.Add(off);
            off += RecordSize + (int)trailing;
        }

        return [.. offsets];
    }

    /// <summary>Checks every string offset and type id in every record, so that decoding later cannot fail.</summary>
    private void Validate(long baseOffset)
    {
        for (int id = 1; id <= Count; id++)
        {
            int off = _offsets[id - 1];
            uint info = U32(off + 4);
            var kind = (BtfKind)((info >> 24) & 0x1f);
            int vlen = (int)(info & 0xffff);
            uint sizeOrType = U32(off + 8);
            int p = off + RecordSize;
            CheckName(id, kind, off, baseOffset, U32(off), off);
            switch (kind)
            {
                case BtfKind.Pointer or BtfKind.Typedef or BtfKind.Volatile or BtfKind.Const or BtfKind.Restrict
                    or BtfKind.Function or BtfKind.FunctionProto or BtfKind.Variable or BtfKind.DeclTag or BtfKind.TypeTag:
                    CheckId(id, kind, off, baseOffset, sizeOrType, off + 8);
                    break;
            }

            switch (kind)
            {
                case BtfKind.Array:
                    CheckId(id, kind, off, baseOffset, U32(p), p);
                    CheckId(id, kind, off, baseOffset, U32(p + 4), p + 4);
                    break;
                case BtfKind.Struct or BtfKind.Union:
                    for (int i = 0; i < vlen; i++, p += 12)
                    {
                        CheckName(id, kind, off, baseOffset, U32(p), p);
                        CheckId(id, kind, off, baseOffset, U32(p + 4), p + 4);
                    }

                    break;
                case BtfKind.Enum:
                    for (int i = 0; i < vlen; i++, p += 8)
                    {
                        CheckName(id, kind, off, baseOffset, U32(p), p);
                    }

                    break;
                case BtfKind.Enum64:
                    for (int i = 0; i < vlen; i++, p += 12)
                    {
                        CheckName(id, kind, off, baseOffset, U32(p), p);
                    }

                    break;
                case BtfKind.FunctionProto:
                    for (int i = 0; i < vlen; i++, p += 8)
                    {
                        CheckName(id, kind, off, baseOffset, U32(p), p);
                        CheckId(id, kind, off, baseOffset, U32(p + 4), p + 4);
                    }

                    break;
                case BtfKind.DataSection:
                    for (int i = 0; i < vlen; i++, p += 12)
                    {
                        CheckId(id, kind, off, baseOffset, U32(p), p);
                    }

                    break;
            }
        }
    }

    private void CheckName(int id, BtfKind kind, int recordOffset, long baseOffset, uint nameOff, int at)
    {
        if (nameOff >= (uint)_strings.Length)
        {
            throw new CorruptImageException(
                $"{Source}: BTF type id {id} ({kind}) at byte offset {baseOffset + recordOffset}: string offset {nameOff} (read at byte offset {baseOffset + at}) " +
                $"is outside the {_strings.Length}-byte string section");
        }
    }

    private void CheckId(int id, BtfKind kind, int recordOffset, long baseOffset, uint typeId, int at)
    {
        if (typeId > (uint)Count)
        {
            throw new CorruptImageException(
                $"{Source}: BTF type id {id} ({kind}) at byte offset {baseOffset + recordOffset}: refers to type id {typeId} (read at byte offset {baseOffset + at}), " +
                $"but the blob has only {Count} types");
        }
    }

    /// <summary>
    /// Rejects cycles among typedefs, qualifiers, type tags, pointers and array elements, which the kernel's verifier
    /// also refuses (kernel/bpf/btf.c "Loop detected"); without this, resolving such a chain could never end. Each of these
    /// kinds has exactly one successor, so a colouring walk visits every id once.
    /// </summary>
    private void CheckChains()
    {
        var state = new byte[Count + 1];
        var path = new List<int>();
        for (int start = 1; start <= Count; start++)
        {
            int id = start;
            while (id != 0 && state[id] == 0)
            {
                state[id] = 1;
                path.Add(id);
                id = ChainSuccessor(id);
            }

            if (id != 0 && state[id] == 1)
            {
                throw new CorruptImageException($"{Source}: BTF type id {id} ({KindOf(id)}) is part of a cycle of typedef/qualifier/pointer/array links");
            }

            foreach (int visited in path)
            {
                state[visited] = 2;
            }

            path.Clear();
        }
    }

    private BtfKind KindOf(int id) => (BtfKind)((U32(_offsets[id - 1] + 4) >> 24) & 0x1f);

    private int ChainSuccessor(int id)
    {
        int off = _offsets[id - 1];
        return KindOf(id) switch
        {
            BtfKind.Typedef or BtfKind.Const or BtfKind.Volatile or BtfKind.Restrict or BtfKind.TypeTag or BtfKind.Pointer => (int)U32(off + 8),
            BtfKind.Array => (int)U32(off + RecordSize),
            _ => 0,
        };
    }

    private BtfType Materialize(int id)
    {
        int off = _offsets[id - 1];
        uint info = U32(off + 4);
        var kind = (BtfKind)((info >> 24) & 0x1f);
        bool kindFlag = (info & 0x8000_0000u) != 0;
        int vlen = (int)(info & 0xffff);
        uint sizeOrType = U32(off + 8);
        string name = StringAt(U32(off));
        int p = off + RecordSize;
        BtfType type = kind switch
        {
            BtfKind.Int => new BtfType(id, kind, name, kindFlag) { Size = sizeOrType, IntEncoding = DecodeInt(U32(p)) },
            BtfKind.Array => new BtfType(id, kind, name, kindFlag)
            {
                Array = new BtfArrayInfo((int)U32(p), (int)U32(p + 4), U32(p + 8)),
            },
            BtfKind.Struct or BtfKind.Union => new BtfType(id, kind, name, kindFlag) { Size = sizeOrType, Members = DecodeMembers(p, vlen, kindFlag) },
            BtfKind.Enum => new BtfType(id, kind, name, kindFlag) { Size = sizeOrType, EnumValues = DecodeEnum(p, vlen, kindFlag) },
            BtfKind.Enum64 => new BtfType(id, kind, name, kindFlag) { Size = sizeOrType, EnumValues = DecodeEnum64(p, vlen) },
            BtfKind.Function => new BtfType(id, kind, name, kindFlag) { ReferencedTypeId = (int)sizeOrType, Linkage = vlen },
            BtfKind.FunctionProto => DecodeProto(id, name, kindFlag, (int)sizeOrType, p, vlen),
            BtfKind.Variable => new BtfType(id, kind, name, kindFlag) { ReferencedTypeId = (int)sizeOrType, Linkage = (int)U32(p) },
            BtfKind.DataSection => new BtfType(id, kind, name, kindFlag) { Size = sizeOrType, Variables = DecodeDataSection(p, vlen) },
            BtfKind.Float => new BtfType(id, kind, name, kindFlag) { Size = sizeOrType },
            // component_idx is a __s32 read as a word; -1 (0xffffffff, a tag on the type itself) must reinterpret, not trap.
            BtfKind.DeclTag => new BtfType(id, kind, name, kindFlag) { ReferencedTypeId = (int)sizeOrType, ComponentIndex = unchecked((int)U32(p)) },
            BtfKind.Forward => new BtfType(id, kind, name, kindFlag),
            _ => new BtfType(id, kind, name, kindFlag) { ReferencedTypeId = (int)sizeOrType },
        };

        return Interlocked.CompareExchange(ref _cache[id], type, null) ?? type;
    }

    private static BtfIntEncoding DecodeInt(uint word)
    {
        // BTF_INT_ENCODING(VAL) (VAL & 0x0f000000) >> 24, BTF_INT_OFFSET(VAL) (VAL & 0x00ff0000) >> 16, BTF_INT_BITS(VAL) VAL & 0xff.
        uint encoding = (word >> 24) & 0x0f;
        return new BtfIntEncoding((int)(word & 0xff), (int)((word >> 16) & 0xff), (encoding & 1) != 0, (encoding & 2) != 0, (encoding & 4) != 0);
    }

    private BtfMember[] DecodeMembers(int p, int vlen, bool kindFlag)
    {
        var members = new BtfMember[vlen];
        for (int i = 0; i < vlen; i++, p += 12)
        {
            uint offset = U32(p + 8);
            members[i] = kindFlag
                ? new BtfMember(StringAt(U32(p)), (int)U32(p + 4), offset & 0xffffff, (int)(offset >> 24))
                : new BtfMember(StringAt(U32(p)), (int)U32(p + 4), offset, 0);
        }

        return members;
    }

    private BtfEnumValue[] DecodeEnum(int p, int vlen, bool signed)
    {
        var values = new BtfEnumValue[vlen];
        for (int i = 0; i < vlen; i++, p += 8)
        {
            uint raw = U32(p + 4);
            values[i] = new BtfEnumValue(StringAt(U32(p)), signed ? unchecked((int)raw) : raw);
        }

        return values;
    }

    private BtfEnumValue[] DecodeEnum64(int p, int vlen)
    {
        var values = new BtfEnumValue[vlen];
        for (int i = 0; i < vlen; i++, p += 12)
        {
            ulong value = ((ulong)U32(p + 8) << 32) | U32(p + 4);
            values[i] = new BtfEnumValue(StringAt(U32(p)), unchecked((long)value));
        }

        return values;
    }

    private BtfType DecodeProto(int id, string name, bool kindFlag, int returnType, int p, int vlen)
    {
        var parameters = new List<BtfParameter>(vlen);
        bool variadic = false;
        for (int i = 0; i < vlen; i++, p += 8)
        {
            var param = new BtfParameter(StringAt(U32(p)), (int)U32(p + 4));

            // btf.rst §2.2.13: a last parameter with name_off 0 and type 0 marks a variadic function.
            if (i == vlen - 1 && param.TypeId == 0 && param.Name.Length == 0)
            {
                variadic = true;
                break;
            }

            parameters.Add(param);
        }

        return new BtfType(id, BtfKind.FunctionProto, name, kindFlag) { ReferencedTypeId = returnType, Parameters = parameters, IsVariadic = variadic };
    }

    private BtfDataSectionEntry[] DecodeDataSection(int p, int vlen)
    {
        var entries = new BtfDataSectionEntry[vlen];
        for (int i = 0; i < vlen; i++, p += 12)
        {
            int typeId = (int)U32(p);
            string varName = typeId == 0 ? "" : StringAt(U32(_offsets[typeId - 1]));
            entries[i] = new BtfDataSectionEntry(typeId, varName, U32(p + 4), U32(p + 8));
        }

        return entries;
    }
}
