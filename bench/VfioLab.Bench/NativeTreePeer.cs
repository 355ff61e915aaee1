using System.Diagnostics;
using System.Runtime.InteropServices;

namespace VfioLab.Bench;

/// <summary>
/// The C peer (native/rbpeer.c, embedded in this assembly): BSD <c>tree.h</c>'s red-black tree from Debian's
/// libbsd-dev, compiled with the system C compiler when a benchmark starts and called through function pointers.
/// A missing compiler or header fails the benchmark loudly (.ci/install-prereqs.sh installs both).
/// </summary>
internal sealed unsafe class NativeTreePeer : IDisposable
{
    private readonly nint _library;
    private readonly delegate* unmanaged<ulong, ulong, ulong, int, int> _setup;
    private readonly delegate* unmanaged<ulong, ulong, int> _insertRemove;
    private readonly delegate* unmanaged<void> _teardown;

    private NativeTreePeer(nint library)
    {
        _library = library;
        _setup = (delegate* unmanaged<ulong, ulong, ulong, int, int>)NativeLibrary.GetExport(library, "rbpeer_setup");
        _insertRemove = (delegate* unmanaged<ulong, ulong, int>)NativeLibrary.GetExport(library, "rbpeer_insert_remove");
        _teardown = (delegate* unmanaged<void>)NativeLibrary.GetExport(library, "rbpeer_teardown");
    }

    /// <summary>Compiles the embedded C source with <c>cc -O2</c> into a shared object in a fresh temporary
    /// directory and loads it.</summary>
    public static NativeTreePeer Build()
    {
        string dir = Directory.CreateTempSubdirectory("vfiolab-rbpeer-").FullName;
        string source = Path.Combine(dir, "rbpeer.c");
        string library = Path.Combine(dir, "librbpeer.so");
        using (Stream s = typeof(NativeTreePeer).Assembly.GetManifestResourceStream("VfioLab.Bench.native.rbpeer.c")
            ?? throw new InvalidOperationException("native/rbpeer.c is not embedded in the benchmark assembly"))
        using (FileStream f = File.Create(source))
        {
            s.CopyTo(f);
        }
        var psi = new ProcessStartInfo("cc", ["-O2", "-shared", "-fPIC", "-Wall", "-o", library, source])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using Process cc = Process.Start(psi) ?? throw new InvalidOperationException("cannot start cc");
        string errors = cc.StandardError.ReadToEnd();
        cc.WaitForExit();
        if (cc.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"cc failed ({cc.ExitCode}) compiling the tree.h peer; is libbsd-dev installed (.ci/install-prereqs.sh)?\n{errors}");
        }
        return new NativeTreePeer(NativeLibrary.Load(library));
    }

    /// <summary>Inserts <paramref name="count"/> nodes at <c>base + i * stride</c>.</summary>
    public void Setup(ulong start, ulong stride, ulong size, int count)
    {
        int r = _setup(start, stride, size, count);
        if (r != count)
        {
            throw new InvalidOperationException($"rbpeer_setup returned {r}");
        }
    }

    /// <summary>RB_INSERT, RB_FIND and RB_REMOVE of one node; true when each did what it should.</summary>
    public bool InsertRemove(ulong iova, ulong size) => _insertRemove(iova, size) == 1;

    public void Dispose()
    {
        _teardown();
        NativeLibrary.Free(_library);
    }
}
