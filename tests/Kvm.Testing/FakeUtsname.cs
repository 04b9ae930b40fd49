using System.Text;

namespace Kvm.Testing;

/// <summary>The bytes of a <c>struct new_utsname</c> (include/uapi/linux/utsname.h: six 65-byte NUL-padded fields) for the fake kernels.</summary>
public static class FakeUtsname
{
    /// <summary>sysname "Linux", then the given nodename, release, version and machine, domainname "(none)".</summary>
    public static byte[] Bytes(string release, string version, string machine, string nodename = "fakehost")
    {
        var uts = new byte[65 * 6];
        string[] fields = ["Linux", nodename, release, version, machine, "(none)"];
        for (int i = 0; i < fields.Length; i++)
        {
            Encoding.ASCII.GetBytes(fields[i]).CopyTo(uts, i * 65);
        }

        return uts;
    }
}
