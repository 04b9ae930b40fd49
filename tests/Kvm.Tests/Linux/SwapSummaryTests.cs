namespace Kvm.Tests.Linux;

/// <summary>libkvm's <c>maxswap</c> rule (libkvm-api.md §1.12): devices in <c>ary[0 .. maxswap-2]</c>, the total of all after them.</summary>
public sealed class SwapSummaryTests
{
    private static readonly SwapSummary s_three = new(
        [
            new SwapArea(0, "/dev/vda", false, 100, 10, -2, 101, 0x43, true),
            new SwapArea(1, "/swapfile", true, 200, 20, -3, 201, 0x03, true),
            new SwapArea(2, "/dev/vdc", false, 300, 30, -4, 301, 0x43, true),
        ],
        4096);

    [Fact]
    public void EnoughRoom_ListsEveryAreaThenTheTotal()
    {
        var rows = s_three.ToKvmSwapRows(16)!;
        Assert.Equal(4, rows.Count);
        Assert.Equal(["/dev/vda", "/swapfile", "/dev/vdc", ""], rows.Select(r => r.Name));
        Assert.Equal((600, 60), (rows[3].TotalPages, rows[3].UsedPages));
        Assert.Equal(-1, rows[3].Type);
    }

    [Fact]
    public void TooLittleRoom_TruncatesAreasButTheTotalCountsAll()
    {
        var rows = s_three.ToKvmSwapRows(2)!;
        Assert.Equal(2, rows.Count);
        Assert.Equal("/dev/vda", rows[0].Name);
        Assert.Equal((600, 60), (rows[1].TotalPages, rows[1].UsedPages));
    }

    [Fact]
    public void MaxSwapOne_IsOnlyTheTotal()
    {
        var rows = s_three.ToKvmSwapRows(1)!;
        Assert.Single(rows);
        Assert.Equal(600, rows[0].TotalPages);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void MaxSwapNotPositive_WritesNothing(int maxSwap) => Assert.Null(s_three.ToKvmSwapRows(maxSwap));
}
