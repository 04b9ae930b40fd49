namespace Kvm.Linux;

/// <summary>
/// Lists a process's open files: <c>task->files->fdt</c> (<c>struct fdtable</c>: <c>max_fds</c>, the <c>fd</c> array
/// and the <c>open_fds</c> and <c>close_on_exec</c> bitmaps), each <c>struct file</c>'s path, flags and position.
/// </summary>
internal sealed class FileWalker
{
    // include/uapi/asm-generic/fcntl.h: O_CLOEXEC is not kept in f_flags; /proc/PID/fdinfo adds it from the bitmap.
    private const uint OCloexec = 0x80000;

    // Linux's NR_OPEN ceiling (fs/file.c sysctl_nr_open_max) bounds max_fds.
    private const uint MaxFds = 1 << 30;

    private readonly LinuxKernel _k;
    private readonly PathResolver _paths;
    private readonly FieldLayout _files, _fdt, _maxFds, _fd, _openFds, _closeOnExec;
    private readonly FieldLayout _fPath, _pathMnt, _pathDentry, _fFlags, _fPos, _fInode;

    /// <summary>Resolves the fields once.</summary>
    public FileWalker(LinuxKernel kernel, PathResolver paths)
    {
        _k = kernel;
        _paths = paths;
        var t = kernel.Types;
        _files = t.Field("task_struct.files");
        _fdt = t.Field("files_struct.fdt");
        _maxFds = t.Field("fdtable.max_fds");
        _fd = t.Field("fdtable.fd");
        _openFds = t.Field("fdtable.open_fds");
        _closeOnExec = t.Field("fdtable.close_on_exec");
        _fPath = t.Field("file.f_path");
        _pathMnt = t.Field("path.mnt");
        _pathDentry = t.Field("path.dentry");
        _fFlags = t.Field("file.f_flags");
        _fPos = t.Field("file.f_pos");
        _fInode = t.Field("file.f_inode");
    }

    /// <summary>Lists the open files of <paramref name="process"/>; an unreadable file is reported in <paramref name="errors"/>.</summary>
    public List<OpenFile> List(KernelProcess process, List<string> errors)
    {
        var result = new List<OpenFile>();
        ulong files = _k.ReadPointer(process.TaskAddress + (ulong)_files.Offset, "task_struct.files");
        if (files == 0)
        {
            return result;
        }

        ulong fdt = _k.ReadPointer(files + (ulong)_fdt.Offset, "files_struct.fdt");
        uint max = _k.ReadU32(fdt + (ulong)_maxFds.Offset, "fdtable.max_fds");
        if (max > MaxFds)
        {
            errors.Add($"pid {process.Pid}: fdtable at 0x{fdt:x} claims {max} descriptors; corrupt");
            return result;
        }

        ulong fdArray = _k.ReadPointer(fdt + (ulong)_fd.Offset, "fdtable.fd");
        ulong openBits = _k.ReadPointer(fdt + (ulong)_openFds.Offset, "fdtable.open_fds");
        ulong cloexecBits = _k.ReadPointer(fdt + (ulong)_closeOnExec.Offset, "fdtable.close_on_exec");
        long bitmapBytes = Bitmap.Bytes(max, _k.PointerSize);
        var open = _k.ReadBytes(openBits, bitmapBytes, "fdtable.open_fds bitmap");
        byte[] cloexec = cloexecBits == 0 ? new byte[bitmapBytes] : _k.ReadBytes(cloexecBits, bitmapBytes, "fdtable.close_on_exec bitmap");
        for (int fd = 0; fd < max; fd++)
        {
            if ((open[fd >> 3] & (1 << (fd & 7))) == 0)
            {
                continue;
            }

            try
            {
                ulong file = _k.ReadPointer(fdArray + ((ulong)fd * (ulong)_k.PointerSize), $"fd[{fd}]");
                if (file == 0)
                {
                    continue;
                }

                ulong path = file + (ulong)_fPath.Offset;
                ulong mnt = _k.ReadPointer(path + (ulong)_pathMnt.Offset, "file.f_path.mnt");
                ulong dentry = _k.ReadPointer(path + (ulong)_pathDentry.Offset, "file.f_path.dentry");
                uint flags = _k.ReadU32(file + (ulong)_fFlags.Offset, "file.f_flags");
                if ((cloexec[fd >> 3] & (1 << (fd & 7))) != 0)
                {
                    flags |= OCloexec;
                }

                long pos = unchecked((long)_k.ReadU64(file + (ulong)_fPos.Offset, "file.f_pos"));
                ulong inode = _k.ReadPointer(file + (ulong)_fInode.Offset, "file.f_inode");
                result.Add(new OpenFile(process.Pid, process.Command, fd, _paths.Resolve(mnt, dentry), flags, pos, TypeOf(_paths.InodeMode(inode)), _paths.InodeNumber(inode), file));
            }
            catch (KvmException e)
            {
                errors.Add($"pid {process.Pid} fd {fd}: {e.Message}");
            }
        }

        return result;
    }

    // include/uapi/linux/stat.h S_IFMT values.
    private static OpenFileType TypeOf(uint mode) => (mode & 0xf000) switch
    {
        0x8000 => OpenFileType.Regular,
        0x4000 => OpenFileType.Directory,
        0x2000 => OpenFileType.CharacterDevice,
        0x6000 => OpenFileType.BlockDevice,
        0x1000 => OpenFileType.Fifo,
        0xc000 => OpenFileType.Socket,
        0xa000 => OpenFileType.SymbolicLink,
        _ => OpenFileType.Unknown,
    };
}
