namespace Kvm.Translation;

/// <summary>
/// The tables one page-table enumeration may still descend into (<see cref="KvmLimits.MaxPageTableWalkTables"/>),
/// shared by every walker: corrupt or looping tables end the walk with one error instead of running on.
/// </summary>
internal sealed class TableWalkBudget(ulong root, int maxTables)
{
    private int _visited;

    /// <summary>Counts one more table; more than the limit means the tables are corrupt or loop.</summary>
    /// <exception cref="CorruptImageException">The limit is passed.</exception>
    public void Descend()
    {
        if (++_visited > maxTables)
        {
            throw new CorruptImageException($"page-table walk from root 0x{root:x}: more than {maxTables} tables (KvmLimits.MaxPageTableWalkTables); the tables are corrupt or loop");
        }
    }
}
