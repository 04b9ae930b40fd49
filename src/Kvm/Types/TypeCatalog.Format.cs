using System.Text;

namespace Kvm.Types;

/// <summary>C-like type names.</summary>
public sealed partial class TypeCatalog
{
    /// <summary>Deepest nesting of function parameter lists formatted (a function pointer parameter taking a function pointer...).</summary>
    private const int MaxFormatDepth = 16;

    /// <summary>
    /// Formats a type as C would spell it in a cast: <c>struct task_struct *</c>, <c>long unsigned int[3]</c>,
    /// <c>const char *</c>, <c>int (*)(void *, ...)</c>. Type tags are left out; a FUNC or VAR is formatted as its
    /// declaration (<c>int foo(void)</c>, <c>int bar</c>).
    /// </summary>
    /// <exception cref="KvmException">The id is out of range.</exception>
    /// <exception cref="CorruptImageException">The type is nested too deeply to be real.</exception>
    public string FormatTypeName(int id) => Format(id, "", 0);

    private string Format(int id, string declarator, int depth)
    {
        if (depth > MaxFormatDepth)
        {
            throw new CorruptImageException($"{Source}: BTF type id {id}: function types nest deeper than {MaxFormatDepth}");
        }

        string decl = declarator;
        string qualifiers = "";

        // Walk from the outermost declarator inward, as C declarations read: each pointer, array or function wraps decl.
        for (int steps = 0; ; steps++)
        {
            if (steps > 4 * MaxResolveDepth)
            {
                throw new CorruptImageException($"{Source}: BTF type id {id}: type chain too long to format");
            }

            var t = GetType(id);
            switch (t.Kind)
            {
                case BtfKind.Const or BtfKind.Volatile or BtfKind.Restrict:
                    string q = t.Kind switch { BtfKind.Const => "const", BtfKind.Volatile => "volatile", _ => "restrict" };
                    qualifiers = qualifiers.Length == 0 ? q : qualifiers + " " + q;
                    id = t.ReferencedTypeId;
                    continue;
                case BtfKind.TypeTag:
                    id = t.ReferencedTypeId;
                    continue;
                case BtfKind.Pointer:
                    // Qualifiers seen just before a pointer qualify the pointer itself: "char *const".
                    if (qualifiers.Length > 0)
                    {
                        decl = decl.Length == 0 ? qualifiers : qualifiers + " " + decl;
                        qualifiers = "";
                    }

                    decl = "*" + decl;
                    id = t.ReferencedTypeId;
                    continue;
                case BtfKind.Array:
                    decl = Parenthesize(decl) + $"[{t.Array!.Value.ElementCount}]";
                    id = t.Array.Value.ElementTypeId;
                    continue;
                case BtfKind.FunctionProto:
                    decl = Parenthesize(decl) + "(" + FormatParameters(t, depth) + ")";
                    qualifiers = "";
                    id = t.ReferencedTypeId;
                    continue;
                case BtfKind.Function or BtfKind.Variable:
                    decl = decl.Length == 0 ? t.Name : t.Name + " " + decl;
                    id = t.ReferencedTypeId;
                    continue;
                default:
                    string baseName = BaseName(t);
                    if (qualifiers.Length > 0)
                    {
                        baseName = qualifiers + " " + baseName;
                    }

                    return decl.Length == 0 ? baseName : decl[0] == '[' ? baseName + decl : baseName + " " + decl;
            }
        }
    }

    private static string Parenthesize(string decl) => decl.StartsWith('*') ? "(" + decl + ")" : decl;

    private string FormatParameters(BtfType proto, int depth)
    {
        if (proto.Parameters.Count == 0)
        {
            return proto.IsVariadic ? "..." : "void";
        }

        var sb = new StringBuilder();
        foreach (var p in proto.Parameters)
        {
            if (sb.Length > 0)
            {
                sb.Append(", ");
            }

            sb.Append(Format(p.TypeId, "", depth + 1));
        }

        if (proto.IsVariadic)
        {
            sb.Append(", ...");
        }

        return sb.ToString();
    }

    private static string BaseName(BtfType t) => t.Kind switch
    {
        BtfKind.Void => "void",
        BtfKind.Struct => t.Name.Length == 0 ? "struct {...}" : "struct " + t.Name,
        BtfKind.Union => t.Name.Length == 0 ? "union {...}" : "union " + t.Name,
        BtfKind.Enum or BtfKind.Enum64 => t.Name.Length == 0 ? "enum {...}" : "enum " + t.Name,
        BtfKind.Forward => (t.IsUnionForward ? "union " : "struct ") + t.Name,
        BtfKind.DataSection => "SEC(\"" + t.Name + "\")",
        BtfKind.DeclTag => "__attribute__((btf_decl_tag(\"" + t.Name + "\")))",
        _ => t.Name,
    };
}
