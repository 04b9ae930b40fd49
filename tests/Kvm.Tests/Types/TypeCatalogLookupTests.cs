using Kvm.Testing;
using Kvm.Types;

namespace Kvm.Tests.Types;

public sealed class TypeCatalogLookupTests
{
    /// <summary>
    /// A miniature of the kernel shapes the walkers rely on:
    /// <code>
    /// struct list_head { struct list_head *next, *prev; };                               // 16 bytes
    /// struct mm_struct { struct { int pad; unsigned long arg_start; union { int a; unsigned long b; }; }; };
    /// struct sched_entity { long pad; u64 sum_exec_runtime; };                          // 16 bytes
    /// struct task_struct { volatile long state; struct sched_entity se; struct list_head tasks;
    ///                      struct mm_struct __rcu *mm; const char comm[16]; unsigned flag:1; };
    /// typedef struct { int counter; } atomic_t;
    /// </code>
    /// </summary>
    private sealed class Kernel
    {
        public Kernel(bool bigEndian = false)
        {
            var b = new BtfBuilder();
            Long = b.Int("long int", 8, 64, signed: true);
            ULong = b.Int("long unsigned int", 8, 64);
            Int = b.Int("int", 4, 32, signed: true);
            Char = b.Int("char", 1, 8, isChar: true);
            U64 = b.Typedef("u64", b.Typedef("__u64", ULong));
            ListHead = b.NextId;
            int lhPtr = b.NextId + 1;
            b.Struct("list_head", 16, ("next", lhPtr, 0, 0), ("prev", lhPtr, 64, 0));
            b.Pointer(ListHead);
            int anonUnion = b.Union("", 8, ("a", Int, 0, 0), ("b", ULong, 0, 0));
            int anonStruct = b.Struct("", 24, ("pad", Int, 0, 0), ("arg_start", ULong, 64, 0), ("", anonUnion, 128, 0));
            MmStruct = b.Struct("mm_struct", 32, ("", anonStruct, 64, 0));
            int se = b.Struct("sched_entity", 16, ("pad", Long, 0, 0), ("sum_exec_runtime", U64, 64, 0));
            int mmPtr = b.Pointer(b.TypeTag("rcu", MmStruct));
            int comm = b.Array(b.Const(Char), Int, 16);
            b.Struct("task_struct", 72,
                ("state", b.Volatile(Long), 0, 0),
                ("se", se, 64, 0),
                ("tasks", ListHead, 192, 0),
                ("mm", mmPtr, 320, 0),
                ("comm", comm, 384, 0),
                ("flag", Int, 512, 1));
            TaskStruct = b.Count;
            int anonAtomic = b.Struct("", 4, ("counter", Int, 0, 0));
            AtomicT = b.Typedef("atomic_t", anonAtomic);
            b.Forward("task_struct");
            Catalog = TypeCatalog.Parse(b.Build(bigEndian), "kernel");
        }

        public int Long { get; }
        public int ULong { get; }
        public int Int { get; }
        public int Char { get; }
        public int U64 { get; }
        public int ListHead { get; }
        public int MmStruct { get; }
        public int TaskStruct { get; }
        public int AtomicT { get; }
        public TypeCatalog Catalog { get; }
    }

    [Theory]
    [InlineData("task_struct.state", 0, 8)]
    [InlineData("task_struct.se", 8, 16)]
    [InlineData("task_struct.se.sum_exec_runtime", 16, 8)]
    [InlineData("task_struct.tasks.prev", 32, 8)]
    [InlineData("task_struct.mm", 40, 8)]
    [InlineData("task_struct.comm", 48, 16)]
    [InlineData("task_struct.comm[3]", 51, 1)]
    [InlineData("mm_struct.arg_start", 16, 8)]
    [InlineData("mm_struct.b", 24, 8)]
    [InlineData("struct mm_struct.pad", 8, 4)]
    [InlineData("atomic_t.counter", 0, 4)]
    public void TryGetMember_AccumulatesOffsets(string path, long offset, long size)
    {
        var k = new Kernel();
        Assert.True(k.Catalog.TryGetMember(path, out var m), path);
        Assert.Equal(path, m.Path);
        Assert.Equal(offset, m.Offset);
        Assert.Equal(offset * 8, m.BitOffset);
        Assert.Equal(0, m.BitSize);
        Assert.Equal(size, m.Size);
    }

    [Fact]
    public void TryGetMember_ResolvesTypeThroughTypedefsQualifiersAndTags()
    {
        var k = new Kernel();
        var state = k.Catalog.GetMember("task_struct.state");
        Assert.Equal(BtfKind.Volatile, k.Catalog.GetType(state.TypeId).Kind);
        Assert.Equal(k.Long, state.Type.Id);
        Assert.Equal(k.ULong, k.Catalog.GetMember("task_struct.se.sum_exec_runtime").Type.Id);
        Assert.Equal(BtfKind.Pointer, k.Catalog.GetMember("task_struct.mm").Type.Kind);
        Assert.Equal(k.MmStruct, k.Catalog.Resolve(k.Catalog.GetMember("task_struct.mm").Type.ReferencedTypeId).Id);
    }

    [Fact]
    public void TryGetMember_Bitfield()
    {
        var m = new Kernel().Catalog.GetMember("task_struct.flag");
        Assert.Equal((64L, 512L, 1), (m.Offset, m.BitOffset, m.BitSize));
    }

    [Theory]
    [InlineData("task_struct.nope")]
    [InlineData("no_such_struct.x")]
    [InlineData("task_struct.state.x")]
    [InlineData("task_struct.comm[16]")]
    [InlineData("task_struct.state[0]")]
    [InlineData("task_struct.comm[x]")]
    [InlineData("task_struct..x")]
    public void TryGetMember_Missing_ReturnsFalse(string path) => Assert.False(new Kernel().Catalog.TryGetMember(path, out _));

    [Fact]
    public void GetMember_Missing_ThrowsNamingStructAndMember()
    {
        var ex = Assert.Throws<KvmException>(() => new Kernel().Catalog.GetMember("task_struct.se.nope"));
        Assert.Equal(KvmErrorCode.KernelType, ex.Code);
        Assert.Contains("task_struct.se", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'nope'", ex.Message, StringComparison.Ordinal);
        var ex2 = Assert.Throws<KvmException>(() => new Kernel().Catalog.GetMember("nothing.x"));
        Assert.Contains("'nothing'", ex2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FindStruct_PrefersDefinitionOverForward_AndFollowsTypedefs()
    {
        var k = new Kernel();
        Assert.Equal(k.TaskStruct, k.Catalog.FindStruct("task_struct")!.Id);
        Assert.Equal(BtfKind.Struct, k.Catalog.FindStruct("atomic_t")!.Kind);
        Assert.Null(k.Catalog.FindStruct("union task_struct"));
        Assert.Null(k.Catalog.FindStruct("int"));
        Assert.Equal(2, k.Catalog.FindByName("task_struct").Count);
        Assert.Empty(k.Catalog.FindByName("absent"));
    }

    [Fact]
    public void FindStruct_OnlyForward_ReturnsForward()
    {
        var b = new BtfBuilder();
        b.Forward("opaque");
        var c = TypeCatalog.Parse(b.Build(), "t");
        Assert.Equal(BtfKind.Forward, c.FindStruct("opaque")!.Kind);
        Assert.False(c.TryGetMember("opaque.x", out _));
        Assert.False(c.TryGetSize("struct opaque", out _));
    }

    [Fact]
    public void SizeOf_ArraysPointersTypedefs()
    {
        var k = new Kernel();
        var c = k.Catalog;
        Assert.Equal(16, c.SizeOf(c.GetMember("task_struct.comm").TypeId));
        Assert.Equal(8, c.SizeOf(k.U64));
        Assert.Equal(0, c.SizeOf(0));
        Assert.True(c.TryGetSize("struct task_struct", out long ts));
        Assert.Equal(72, ts);
        Assert.True(c.TryGetSize("u64", out long u));
        Assert.Equal(8, u);
        Assert.True(c.TryGetSize("atomic_t", out long a));
        Assert.Equal(4, a);
        Assert.True(c.TryGetSize("struct list_head *", out long p));
        Assert.Equal(8, p);
        Assert.False(c.TryGetSize("struct nothing", out _));
    }

    [Fact]
    public void PointerSize_IsConfigurable()
    {
        var b = new BtfBuilder();
        int p = b.Pointer(0);
        b.Array(p, 0, 4);
        var c = TypeCatalog.Parse(b.Build(), "t");
        Assert.Equal(32, c.SizeOf(2));
        var c32 = new BtfBuilder();
        int p32 = c32.Pointer(0);
        c32.Array(p32, 0, 4);
        Assert.Equal(16, TypeCatalog.Parse(c32.Build(), "t32").WithPointerSize(4).SizeOf(2));
    }

    [Fact]
    public void Resolve_SkipsTypedefQualifierAndTypeTagChains()
    {
        var b = new BtfBuilder();
        int i = b.Int("int", 4, 32, signed: true);
        int chain = b.TypeTag("user", b.Const(b.Volatile(b.Restrict(b.Typedef("a", b.Typedef("b", i))))));
        var c = TypeCatalog.Parse(b.Build(), "t");
        Assert.Equal(i, c.Resolve(chain).Id);
        Assert.Equal(i, c.Resolve(i).Id);
        Assert.Equal(BtfKind.Void, c.Resolve(0).Kind);
    }

    [Fact]
    public void GetDataSection_NamesItsVariables()
    {
        var b = new BtfBuilder();
        int i = b.Int("int", 4, 32, signed: true);
        int v1 = b.Variable("runqueues", i);
        int v2 = b.Variable("cpu_number", i, linkage: 0);
        b.DataSection(".data..percpu", 64, (v1, 0, 4), (v2, 32, 4));
        var c = TypeCatalog.Parse(b.Build(), "t");
        var entries = c.GetDataSection(".data..percpu");
        Assert.Equal(["runqueues", "cpu_number"], entries.Select(e => e.Name));
        Assert.Equal(32, entries[1].Offset);
        Assert.Equal(0, c.GetType(entries[1].TypeId).Linkage);
        Assert.Empty(c.GetDataSection(".bss"));
    }

    [Fact]
    public void GetType_OutOfRange_Throws()
    {
        var c = new Kernel().Catalog;
        Assert.False(c.TryGetType(c.Count + 1, out _));
        Assert.False(c.TryGetType(-1, out _));
        Assert.Equal(KvmErrorCode.KernelType, Assert.Throws<KvmException>(() => c.GetType(c.Count + 1)).Code);
        Assert.Equal(KvmErrorCode.KernelType, Assert.Throws<KvmException>(() => c.GetType(-1)).Code);
        Assert.Equal(BtfKind.Void, c.GetType(0).Kind);
    }

    [Fact]
    public void FormatTypeName_CDeclarators()
    {
        var b = new BtfBuilder();
        int ulong_ = b.Int("unsigned long", 8, 64);
        int chr = b.Int("char", 1, 8, isChar: true);
        int i32 = b.Int("int", 4, 32, signed: true);
        int task = b.Struct("task_struct", 8, ("x", ulong_, 0, 0));
        int taskPtr = b.Pointer(b.TypeTag("rcu", task));
        int avenrun = b.Array(ulong_, i32, 3);
        int constCharPtr = b.Pointer(b.Const(chr));
        int charConstPtr = b.Const(b.Pointer(chr));
        int proto = b.FunctionProto(i32, true, ("fmt", constCharPtr));
        int fnPtr = b.Pointer(proto);
        int ptrToArray = b.Pointer(avenrun);
        int arrayOfPtrs = b.Array(taskPtr, i32, 2);
        int voidProto = b.FunctionProto(0, false);
        int func = b.Function("schedule", voidProto);
        int anonUnion = b.Union("", 8);
        int fwd = b.Forward("kobj", union: true);
        int e = b.Enum("pid_type", 4, false, ("PIDTYPE_PID", 0));
        int cv = b.Volatile(b.Const(i32));
        int v = b.Variable("jiffies", ulong_);
        var c = TypeCatalog.Parse(b.Build(), "t");

        Assert.Equal("struct task_struct *", c.FormatTypeName(taskPtr));
        Assert.Equal("unsigned long[3]", c.FormatTypeName(avenrun));
        Assert.Equal("const char *", c.FormatTypeName(constCharPtr));
        Assert.Equal("char *const", c.FormatTypeName(charConstPtr));
        Assert.Equal("int (*)(const char *, ...)", c.FormatTypeName(fnPtr));
        Assert.Equal("unsigned long (*)[3]", c.FormatTypeName(ptrToArray));
        Assert.Equal("struct task_struct *[2]", c.FormatTypeName(arrayOfPtrs));
        Assert.Equal("void schedule(void)", c.FormatTypeName(func));
        Assert.Equal("union {...}", c.FormatTypeName(anonUnion));
        Assert.Equal("union kobj", c.FormatTypeName(fwd));
        Assert.Equal("enum pid_type", c.FormatTypeName(e));
        Assert.Equal("volatile const int", c.FormatTypeName(cv));
        Assert.Equal("unsigned long jiffies", c.FormatTypeName(v));
        Assert.Equal("void", c.FormatTypeName(0));
    }

    [Fact]
    public void ConcurrentLookups_AgreeWithSequentialOnes()
    {
        var k = new Kernel();
        var results = new MemberLayout[64];
        Parallel.For(0, results.Length, i => results[i] = k.Catalog.GetMember("mm_struct.arg_start"));
        Assert.All(results, r => Assert.Equal(16, r.Offset));
    }
}
