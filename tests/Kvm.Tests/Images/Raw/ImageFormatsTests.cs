using Kvm.Images;
using Kvm.Testing;
using Kvm.Tests.Images.Elf;

namespace Kvm.Tests.Images.Raw;

/// <summary>Content detection and the errors of <see cref="ImageFormats.Open"/>.</summary>
public sealed class ImageFormatsTests
{
    [Fact]
    public void Open_SmallTextFile_IsUnrecognized()
    {
        using var file = new ScratchFile("this is not a memory image\n", "notes.txt");

        var ex = Assert.Throws<KvmException>(() => file.Open());
        Assert.Equal(KvmErrorCode.NotSupported, ex.Code);
        Assert.Contains("unrecognized image format", ex.Message);
        Assert.Contains(file.Path, ex.Message);
    }

    [Fact]
    public void Open_UnalignedLargeFile_IsUnrecognized()
    {
        using var file = new ScratchFile(new byte[(1 << 20) + 100]);

        var ex = Assert.Throws<KvmException>(() => file.Open());
        Assert.Contains("unrecognized image format", ex.Message);
    }

    [Fact]
    public void Open_EmptyFile_IsCorrupt()
    {
        using var file = new ScratchFile([]);

        var ex = Assert.Throws<CorruptImageException>(() => file.Open());
        Assert.Equal(KvmErrorCode.CorruptImage, ex.Code);
        Assert.Contains("empty file", ex.Message);
        Assert.Contains(file.Path, ex.Message);
    }

    [Fact]
    public void Open_NoPaths_Throws()
    {
        Assert.Throws<ArgumentException>(() => ScratchFile.OpenImage([]));
    }

    [Fact]
    public void Open_MissingFile_ThrowsFileNotFound()
    {
        Assert.Throws<FileNotFoundException>(() => ScratchFile.OpenImage([Path.Combine(Path.GetTempPath(), "kvm-missing-" + Guid.NewGuid().ToString("N"))]));
    }

    [Fact]
    public void Open_TwoElfFiles_IsNotSupported()
    {
        var elf = new ElfCoreBuilder().AddLoad(0, 0, new byte[64]).Build();
        using var first = new ScratchFile(elf);
        using var second = new ScratchFile(elf);

        var ex = Assert.Throws<KvmException>(() => ScratchFile.OpenImage([first.Path, second.Path]));
        Assert.Equal(KvmErrorCode.NotSupported, ex.Code);
        Assert.Contains("several files", ex.Message);
        Assert.Contains("ELF core", ex.Message);
    }

    [Fact]
    public void Open_TwoLimeFiles_IsNotSupported()
    {
        var lime = new LimeBuilder().AddRange(0, new byte[64]).Build();
        using var first = new ScratchFile(lime);
        using var second = new ScratchFile(lime);

        var ex = Assert.Throws<KvmException>(() => ScratchFile.OpenImage([first.Path, second.Path]));
        Assert.Equal(KvmErrorCode.NotSupported, ex.Code);
        Assert.Contains("LiME", ex.Message);
    }

    [Fact]
    public void Open_TwoRawFiles_IsNotSupported()
    {
        using var first = new ScratchFile(new byte[1 << 20]);
        using var second = new ScratchFile(new byte[1 << 20]);

        var ex = Assert.Throws<KvmException>(() => ScratchFile.OpenImage([first.Path, second.Path]));
        Assert.Equal(KvmErrorCode.NotSupported, ex.Code);
    }

    [Fact]
    public void Open_DetectsByContentNotName()
    {
        var lime = new LimeBuilder().AddRange(0, new byte[64]).Build();
        var elf = new ElfCoreBuilder().AddLoad(0, 0, new byte[64]).Build();
        using var limeNamedElf = new ScratchFile(lime, "vmcore.elf");
        using var elfNamedLime = new ScratchFile(elf, "memory.lime");

        using var a = limeNamedElf.Open();
        using var b = elfNamedLime.Open();

        Assert.Equal(DumpFormat.Lime, a.Format);
        Assert.Equal(DumpFormat.Elf, b.Format);
    }

    [Fact]
    public void Open_LimeWithWrongFirstVersionAndSmall_IsUnrecognized()
    {
        var bytes = new LimeBuilder().AddRawRange(LimeBuilder.Magic, 2, 0, 63, new byte[64]).Build();
        using var file = new ScratchFile(bytes);

        var ex = Assert.Throws<KvmException>(() => file.Open());
        Assert.Equal(KvmErrorCode.NotSupported, ex.Code);
    }

    [Fact]
    public void Open_ReadOnly_ImageCannotWrite()
    {
        using var file = new ScratchFile(new byte[1 << 20]);
        using var image = file.Open();

        Assert.False(image.CanWrite);
        var ex = Assert.Throws<KvmException>(() => image.WritePhysical(0, new byte[] { 1 }));
        Assert.Equal(KvmErrorCode.ReadOnly, ex.Code);
    }
}
