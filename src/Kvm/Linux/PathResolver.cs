using System.Text;

namespace Kvm.Linux;

/// <summary>
/// Rebuilds a path from a <c>struct path</c> (vfsmount + dentry) as the kernel's <c>d_path()</c> does: dentry names
/// up to the mount's root, then across mounts through <c>struct mount</c> (<c>mnt_mountpoint</c>, <c>mnt_parent</c>)
/// to the root mount. Pseudo filesystems without a name (pipefs, sockfs) get the <c>pipe:[ino]</c> forms that their
/// <c>d_dname</c> operations print.
/// </summary>
internal sealed class PathResolver
{
    private const int MaxDepth = 4096;
    private readonly LinuxKernel _k;
    private readonly FieldLayout _dParent, _dNameName, _dNameLen, _dInode, _mntRoot, _mntSb, _mountMnt, _mountParent, _mountMountpoint;
    private readonly FieldLayout? _sbType, _fsName, _inodeIno, _inodeMode;

    /// <summary>Resolves the fields once.</summary>
    public PathResolver(LinuxKernel kernel)
    {
        _k = kernel;
        var t = kernel.Types;
        _dParent = t.Field("dentry.d_parent");
        _dNameName = t.Field("dentry.d_name.name");
        _dNameLen = t.Field("dentry.d_name.len");
        _dInode = t.Field("dentry.d_inode");
        _mntRoot = t.Field("vfsmount.mnt_root");
        _mntSb = t.Field("vfsmount.mnt_sb");
        _mountMnt = t.Field("mount.mnt");
        _mountParent = t.Field("mount.mnt_parent");
        _mountMountpoint = t.Field("mount.mnt_mountpoint");
        _sbType = t.OptionalField("super_block.s_type");
        _fsName = t.OptionalField("file_system_type.name");
        _inodeIno = t.OptionalField("inode.i_ino");
        _inodeMode = t.OptionalField("inode.i_mode");
    }

    /// <summary>The inode of a dentry, or 0.</summary>
    public ulong Inode(ulong dentry) => dentry == 0 ? 0 : _k.ReadPointer(dentry + (ulong)_dInode.Offset, "dentry.d_inode");

    /// <summary>The inode number, or 0.</summary>
    public ulong InodeNumber(ulong inode) => inode == 0 || _inodeIno is not { } f ? 0 : _k.ReadULong(inode + (ulong)f.Offset, "inode.i_ino");

    /// <summary>The inode's mode bits, or 0.</summary>
    public uint InodeMode(ulong inode)
    {
        if (inode == 0 || _inodeMode is not { } f)
        {
            return 0;
        }

        Span<byte> b = stackalloc byte[2];
        _k.ReadExactly(inode + (ulong)f.Offset, b, "inode.i_mode");
        return (uint)(b[0] | (b[1] << 8));
    }

    /// <summary>Rebuilds the path of <paramref name="vfsmount"/> + <paramref name="dentry"/>.</summary>
    public string Resolve(ulong vfsmount, ulong dentry)
    {
        if (vfsmount == 0 || dentry == 0)
        {
            return "";
        }

        string fs = FileSystemName(vfsmount);
        if (fs is "pipefs" or "sockfs")
        {
            ulong ino = InodeNumber(Inode(dentry));
            return fs == "pipefs" ? $"pipe:[{ino}]" : $"socket:[{ino}]";
        }

        if (fs == "anon_inodefs")
        {
            return "anon_inode:" + Name(dentry);
        }

        var parts = new List<string>();
        ulong mount = vfsmount - (ulong)_mountMnt.Offset;
        for (int depth = 0; depth < MaxDepth; depth++)
        {
            ulong root = _k.ReadPointer(vfsmount + (ulong)_mntRoot.Offset, "vfsmount.mnt_root");
            if (dentry == root)
            {
                ulong parent = _k.ReadPointer(mount + (ulong)_mountParent.Offset, "mount.mnt_parent");
                if (parent == mount || parent == 0)
                {
                    break;
                }

                dentry = _k.ReadPointer(mount + (ulong)_mountMountpoint.Offset, "mount.mnt_mountpoint");
                mount = parent;
                vfsmount = mount + (ulong)_mountMnt.Offset;
                continue;
            }

            ulong up = _k.ReadPointer(dentry + (ulong)_dParent.Offset, "dentry.d_parent");
            parts.Add(Name(dentry));
            if (up == dentry || up == 0)
            {
                break;
            }

            dentry = up;
        }

        if (parts.Count >= MaxDepth)
        {
            throw new CorruptImageException($"the path through dentry 0x{dentry:x} is deeper than {MaxDepth} components: a looping d_parent chain");
        }

        parts.Reverse();
        return "/" + string.Join('/', parts);
    }

    private string Name(ulong dentry)
    {
        uint len = _k.ReadU32(dentry + (ulong)_dNameLen.Offset, "dentry.d_name.len");
        ulong name = _k.ReadPointer(dentry + (ulong)_dNameName.Offset, "dentry.d_name.name");
        var bytes = _k.ReadBytes(name, Math.Min(len, 255u), "dentry name");
        return Encoding.UTF8.GetString(bytes);
    }

    private string FileSystemName(ulong vfsmount)
    {
        if (_sbType is not { } sbType || _fsName is not { } fsName)
        {
            return "";
        }

        ulong sb = _k.ReadPointer(vfsmount + (ulong)_mntSb.Offset, "vfsmount.mnt_sb");
        ulong type = sb == 0 ? 0 : _k.ReadPointer(sb + (ulong)sbType.Offset, "super_block.s_type");
        ulong name = type == 0 ? 0 : _k.ReadPointer(type + (ulong)fsName.Offset, "file_system_type.name");
        return name == 0 ? "" : _k.ReadCString(name, 64);
    }
}
