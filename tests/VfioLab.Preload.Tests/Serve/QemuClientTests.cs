using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace VfioLab.Preload.Tests;

/// <summary>
/// QEMU, a client no one here wrote, against <c>vfiolab serve</c> on examples/clients/qemu-host.yaml: Debian's
/// qemu-system-x86_64 under libvfiolab-preload.so with <c>-device vfio-pci,host=0000:00:10.0</c>, machine q35 with a
/// 4 GiB guest, paused (<c>-S</c>, TCG). The device realizes (QMP's query-pci lists it with the edu's ids), QEMU's
/// memory listener maps the guest's RAM through the model (<c>vfiolab ctl status</c> shows it while QEMU is paused),
/// and at <c>quit</c> the server's report shows the mappings QEMU left, locked_vm equal to what they cover, and no
/// invariant violation.
/// A machine without qemu-system-x86_64 fails this test (<c>bash .ci/install-prereqs.sh</c> installs it).
/// </summary>
public sealed partial class QemuClientTests
{
    private const string Device = "0000:00:10.0";
    private const ulong GuestRam = 4UL << 30;

    // QEMU maps its firmware (pc.bios, 256 KiB read-only at the top of the 32-bit space) through the container too.
    private const ulong BiosIova = 0xfffc0000;

    [Fact]
    public void Qemu_RealizesVfioPci_MapsGuestRam_AndQuitsWithTheModelClean()
    {
        string qemu = FindQemu();
        NativeBuild.Ensure();
        using var server = ServeProcess.Start(Path.Combine(RepoPaths.Clients, "qemu-host.yaml"));
        ProcessRun? status = null;
        ProcessRun? check = null;
        var (qemuExit, pci, qemuErr) = RunQemu(qemu, server.Socket, whilePaused: () =>
        {
            // vfiolab ctl while QEMU is paused with its guest RAM mapped: the model's state and an invariant check
            status = Ctl(server.Socket, "status");
            check = Ctl(server.Socket, "check");
        });
        var (serverExit, report) = server.Stop();
        string context = $"\n--- QEMU stderr ---\n{qemuErr}--- server ---\n{report}";

        Assert.True(qemuExit == 0, $"QEMU exited {qemuExit}{context}");
        JsonElement vfio = pci.EnumerateArray().SelectMany(bus => bus.GetProperty("devices").EnumerateArray())
            .SingleOrDefault(d => d.TryGetProperty("qdev_id", out JsonElement id) && id.GetString() == "vfio0");
        Assert.True(vfio.ValueKind == JsonValueKind.Object, $"query-pci has no device vfio0: {pci}{context}");
        Assert.Equal(0x1234, vfio.GetProperty("id").GetProperty("vendor").GetInt32());
        Assert.Equal(0x11e8, vfio.GetProperty("id").GetProperty("device").GetInt32());
        Assert.Equal(0x00ff, vfio.GetProperty("class_info").GetProperty("class").GetInt32());

        // The container QEMU held at its exit: its mappings and the locked_vm they charged.
        Match header = ContainerAtExit().Match(report);
        Assert.True(header.Success, $"the server logged no container held at QEMU's exit{context}");
        Assert.Equal("2", header.Groups["groups"].Value);
        ulong lockedVm = ulong.Parse(header.Groups["locked"].Value, CultureInfo.InvariantCulture);
        var mappings = MappingLine().Matches(report[header.Index..])
            .Select(m => (Iova: Hex(m.Groups["iova"].Value), Size: Hex(m.Groups["size"].Value), Vaddr: Hex(m.Groups["vaddr"].Value),
                Prot: m.Groups["prot"].Value, Locked: ulong.Parse(m.Groups["locked"].Value, CultureInfo.InvariantCulture)))
            .OrderBy(m => m.Iova).ToList();
        Assert.Equal(int.Parse(header.Groups["count"].Value, CultureInfo.InvariantCulture), mappings.Count);
        for (int i = 1; i < mappings.Count; i++)
        {
            Assert.True(mappings[i - 1].Iova + mappings[i - 1].Size <= mappings[i].Iova, $"mappings overlap{context}");
        }
        ulong mapped = mappings.Aggregate(0UL, (sum, m) => sum + m.Size);
        Assert.True(lockedVm == mapped, $"locked_vm {lockedVm} is not the {mapped} bytes QEMU mapped{context}");
        Assert.All(mappings, m => Assert.Equal(m.Size / 4096, m.Locked));

        // QEMU 7.2's memory listener on q35 with 4 GiB: guest RAM writable, 2 GiB below 4 GiB and 2 GiB above, less
        // 0xc0000-0xfffff where the PAM registers show the option ROM and the BIOS's last 128 KiB after reset; those
        // two and the BIOS at the top of the 32-bit space (256 KiB) read-only.
        ulong writable = mappings.Where(m => m.Prot == "rw").Aggregate(0UL, (sum, m) => sum + m.Size);
        Assert.True(writable == GuestRam - 0x40000, $"the writable mappings total 0x{writable:x}, not the guest's RAM less 0xc0000-0xfffff{context}");
        Assert.Contains(mappings, m => m.Iova == 0x100000000 && m.Size == 2UL << 30 && m.Prot == "rw");
        Assert.All(mappings.Where(m => m.Prot != "rw"), m => Assert.True(
            m.Prot == "r-" && ((m.Iova >= 0xc0000 && m.Iova + m.Size <= 0x100000) || (m.Iova == BiosIova && m.Size == 0x40000)),
            $"a mapping that is neither guest RAM nor firmware: iova 0x{m.Iova:x} size 0x{m.Size:x} {m.Prot}{context}"));

        // What vfiolab ctl showed while QEMU ran is what QEMU left at its exit: the same mappings, the same locked_vm,
        // every locked page pinned, and no invariant broken.
        Assert.True(status is { ExitCode: 0 } && check is { ExitCode: 0 }, $"vfiolab ctl failed:\n{status?.Both}{check?.Both}{context}");
        Assert.Matches(@$"process pid\d+ \(real pid \d+\): alive, locked_vm {lockedVm} bytes", status!.Stdout);
        var ctlMappings = CtlMappingLine().Matches(status.Stdout).Select(m => (Iova: Hex(m.Groups["iova"].Value), Size: Hex(m.Groups["size"].Value)))
            .OrderBy(m => m.Iova).ToList();
        Assert.Equal(mappings.Select(m => (m.Iova, m.Size)), ctlMappings);
        // Pinned pages are distinct frames: the BIOS's last 128 KiB, mapped at 0xe0000 and again inside 0xfffc0000, are
        // pinned once but charged to locked_vm twice (type1 charges each mapping's pages, as Linux does).
        ulong distinct = 0;
        ulong end = 0;
        foreach (var (start, size) in mappings.Select(m => (m.Vaddr, m.Size)).OrderBy(v => v.Vaddr))
        {
            distinct += start + size <= end ? 0 : start + size - Math.Max(start, end);
            end = Math.Max(end, start + size);
        }
        Assert.True(distinct < lockedVm, $"no page is mapped twice (QEMU maps the BIOS's alias at 0xe0000){context}");
        Assert.True(status.Stdout.Contains(string.Create(CultureInfo.InvariantCulture, $"pinned pages {distinct / 4096};"), StringComparison.Ordinal),
            $"pinned pages are not the {distinct / 4096} distinct pages of QEMU's mappings:\n{status.Stdout}{context}");

        Assert.Contains("invariants: no violation", report, StringComparison.Ordinal);
        Assert.True(serverExit == 0, $"vfiolab serve exited {serverExit}{context}");
    }

    /// <summary>
    /// <c>vfiolab serve --record</c> with QEMU paused on q35 with 4 GiB: the recording replays on the model with
    /// every step meeting what QEMU got, including its guest RAM mmapped where QEMU had it, every MAP_DMA, the BAR
    /// mmapped at QEMU's address and the eventfds QEMU gave SET_IRQS.
    /// </summary>
    [Fact]
    public void Qemu_Paused_IsRecordedAndTheRecordingReplaysWithTheSameResults()
    {
        string qemu = FindQemu();
        NativeBuild.Ensure();
        string dir = Directory.CreateTempSubdirectory("vfiolab-record-").FullName;
        try
        {
            string record = Path.Combine(dir, "qemu.yaml");
            using var server = ServeProcess.Start(Path.Combine(RepoPaths.Clients, "qemu-host.yaml"), "--record", record);
            var (qemuExit, _, qemuErr) = RunQemu(qemu, server.Socket, whilePaused: () => { });
            var (serverExit, report) = server.Stop();
            string context = $"\n--- QEMU stderr ---\n{qemuErr}--- server ---\n{report}";
            Assert.True(qemuExit == 0 && serverExit == 0, $"QEMU exited {qemuExit}, the server {serverExit}{context}");
            string text = File.ReadAllText(record);
            Assert.Matches(@"- mmap: \{ process: client1, size: 4GiB, backing: anonymous, prot: rw, at: 0x[0-9a-f]+ \}", text);
            Assert.Matches(@"- mmap_region: \{ process: client1, device_fd: device_0000_00_10_0, index: 0, offset: 0x0, size: 0x100000, prot: rw, at: 0x[0-9a-f]+ \}", text);
            Assert.Contains("request: VFIO_IOMMU_MAP_DMA", text, StringComparison.Ordinal);
            Assert.Contains("eventfds: [eventfd1]", text, StringComparison.Ordinal);
            RecordedClientTests.AssertReplays(record, context);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static ProcessRun Ctl(string socket, string request) =>
        ProcessRun.Start(Path.Combine(AppContext.BaseDirectory, "VfioLab.Cli"), ["ctl", "--socket", socket, request],
            new Dictionary<string, string?> { ["LD_PRELOAD"] = null, ["VFIOLAB_SOCKET"] = null, ["NO_COLOR"] = "1" }, TimeSpan.FromSeconds(60));

    /// <summary>
    /// QEMU boots Debian's Linux 6.12 (the rig's kernel, conformance/setup.sh) with the model's device: the guest
    /// kernel enumerates it with the model's ids, class and BAR (config space read through the model), QEMU maps the
    /// BAR into the container as the guest enables it (device memory: charged nothing), and the guest powers off.
    /// </summary>
    [Fact]
    public void Qemu_BootsLinuxThatEnumeratesTheModelsDevice_AndPowersOffWithTheModelClean()
    {
        string qemu = FindQemu();
        var (vmlinux, initramfs) = RigKernel("6.12");
        NativeBuild.Ensure();
        using var server = ServeProcess.Start(Path.Combine(RepoPaths.Clients, "qemu-host.yaml"));
        var run = ProcessRun.Start(qemu,
        [
            "-machine", "q35", "-accel", "tcg", "-m", "4G", "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-monitor", "none", "-serial", "stdio", "-device", $"vfio-pci,host={Device},id=vfio0",
            "-kernel", vmlinux, "-initrd", initramfs,
            // busybox's poweroff as the guest's init: the kernel boots, enumerates PCI, and powers the machine off
            "-append", "console=ttyS0 panic=-1 no_timer_check rdinit=/bin/poweroff -- -f",
        ], new Dictionary<string, string?>
        {
            ["LD_PRELOAD"] = RepoPaths.Preload,
            ["VFIOLAB_SOCKET"] = server.Socket,
            ["VFIOLAB_TIMEOUT_MS"] = "60000",
        }, TimeSpan.FromSeconds(90));
        var (serverExit, report) = server.Stop();
        string context = $"\n--- guest console and QEMU ---\n{run.Both}--- server ---\n{report}";

        Assert.True(run.ExitCode == 0, $"QEMU exited {run.ExitCode}{context}");
        Assert.True(run.Stdout.Contains("pci 0000:00:01.0: [1234:11e8] type 00 class 0x00ff00", StringComparison.Ordinal),
            $"the guest did not enumerate the model's edu{context}");
        Match bar = GuestBar().Match(run.Stdout);
        Assert.True(bar.Success, $"the guest found no 1 MiB BAR 0 on the device{context}");
        Assert.Contains("reboot: Power down", run.Stdout, StringComparison.Ordinal);

        Match header = ContainerAtExit().Match(report);
        Assert.True(header.Success, $"the server logged no container held at QEMU's exit{context}");
        ulong lockedVm = ulong.Parse(header.Groups["locked"].Value, CultureInfo.InvariantCulture);
        var mappings = MappingLine().Matches(report[header.Index..])
            .Select(m => (Iova: Hex(m.Groups["iova"].Value), Size: Hex(m.Groups["size"].Value),
                Locked: ulong.Parse(m.Groups["locked"].Value, CultureInfo.InvariantCulture)))
            .ToList();
        // The BAR, where the guest put it, is in the container (QEMU maps device memory for peer-to-peer DMA) and
        // charges nothing; the guest's RAM is charged page for page, and locked_vm is exactly that.
        ulong barAddress = Hex(bar.Groups["start"].Value);
        Assert.Contains(mappings, m => m.Iova == barAddress && m.Size == 0x100000 && m.Locked == 0);
        Assert.All(mappings.Where(m => m.Iova != barAddress), m => Assert.Equal(m.Size / 4096, m.Locked));
        ulong charged = mappings.Aggregate(0UL, (sum, m) => sum + (m.Locked * 4096));
        Assert.True(lockedVm == charged, $"locked_vm {lockedVm} is not the {charged} bytes of RAM QEMU mapped{context}");
        Assert.True(charged >= GuestRam, $"QEMU mapped less than the guest's RAM{context}");

        Assert.Contains("invariants: no violation", report, StringComparison.Ordinal);
        Assert.True(serverExit == 0, $"vfiolab serve exited {serverExit}{context}");
    }

    // The rig's unpacked kernel and its initramfs (RIG_CACHE or conformance/.cache), the initramfs built if missing.
    private static (string Vmlinux, string Initramfs) RigKernel(string kernel)
    {
        string cache = Environment.GetEnvironmentVariable("RIG_CACHE") is { Length: > 0 } c ? c : Path.Combine(RepoPaths.Root, "conformance", ".cache");
        string vmlinux = Path.Combine(cache, "kernels", kernel, "vmlinux");
        if (!File.Exists(vmlinux))
        {
            throw new InvalidOperationException(
                $"{vmlinux} is missing: this test boots the conformance rig's Linux {kernel} under QEMU; "
                + "unpack it with `bash .ci/install-prereqs.sh` (conformance/setup.sh), or point RIG_CACHE at a rig's cache");
        }
        string initramfs = Path.Combine(cache, "initramfs", kernel + ".cpio");
        if (!File.Exists(initramfs))
        {
            var build = ProcessRun.Start("bash", [Path.Combine(RepoPaths.Root, "conformance", "build-initramfs.sh"), kernel], timeout: TimeSpan.FromMinutes(5));
            if (build.ExitCode != 0 || !File.Exists(initramfs))
            {
                throw new InvalidOperationException($"conformance/build-initramfs.sh {kernel} failed (exit {build.ExitCode}):\n{build.Both}");
            }
        }
        return (vmlinux, initramfs);
    }

    // Runs QEMU paused under the preload, asks QMP for the PCI devices, runs whilePaused, then quits: (exit code,
    // query-pci's return, stderr).
    private static (int Exit, JsonElement Pci, string Stderr) RunQemu(string qemu, string socket, Action whilePaused)
    {
        string[] args =
        [
            "-machine", "q35,accel=tcg", "-m", "4G", "-S", "-display", "none", "-nodefaults", "-qmp", "stdio",
            "-device", $"vfio-pci,host={Device},id=vfio0",
        ];
        using var process = new Process
        {
            StartInfo = ProcessRun.Info(qemu, args, new Dictionary<string, string?>
            {
                ["LD_PRELOAD"] = RepoPaths.Preload,
                ["VFIOLAB_SOCKET"] = socket,
                ["VFIOLAB_TIMEOUT_MS"] = "60000",
            }, null),
        };
        process.StartInfo.RedirectStandardInput = true;
        var stderr = new StringBuilder();
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        process.Start();
        process.BeginErrorReadLine();
        try
        {
            var deadline = Stopwatch.StartNew();
            Qmp(process, null, deadline, stderr); // the greeting
            Qmp(process, """{"execute":"qmp_capabilities"}""", deadline, stderr);
            JsonElement pci = Qmp(process, """{"execute":"query-pci"}""", deadline, stderr);
            whilePaused();
            Qmp(process, """{"execute":"quit"}""", deadline, stderr);
            if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
            {
                throw new TimeoutException($"QEMU did not exit within 30 s of quit:\n{stderr}");
            }
            process.WaitForExit();
            lock (stderr)
            {
                return (process.ExitCode, pci, stderr.ToString());
            }
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }
        }
    }

    // Sends one QMP command (none: reads the greeting) and returns its "return", skipping events; QEMU's exit before
    // the answer (a device that failed to realize) or an "error" fails with what QEMU printed.
    private static JsonElement Qmp(Process qemu, string? command, Stopwatch deadline, StringBuilder stderr)
    {
        if (command is not null)
        {
            qemu.StandardInput.WriteLine(command);
            qemu.StandardInput.Flush();
        }
        while (true)
        {
            Task<string?> read = qemu.StandardOutput.ReadLineAsync();
            TimeSpan left = TimeSpan.FromSeconds(60) - deadline.Elapsed;
            if (left <= TimeSpan.Zero || !read.Wait(left))
            {
                throw new TimeoutException($"QEMU did not answer {command ?? "with its QMP greeting"} within 60 s:\n{Stderr(stderr)}");
            }
            string line = read.Result
                ?? throw new InvalidOperationException($"QEMU closed QMP before answering {command ?? "(greeting)"}:\n{Stderr(stderr)}");
            using JsonDocument doc = JsonDocument.Parse(line);
            JsonElement root = doc.RootElement;
            if (command is null && root.TryGetProperty("QMP", out JsonElement greeting))
            {
                return greeting.Clone();
            }
            if (root.TryGetProperty("error", out JsonElement error))
            {
                throw new InvalidOperationException($"QMP {command} failed: {error}\n{Stderr(stderr)}");
            }
            if (root.TryGetProperty("return", out JsonElement result))
            {
                return result.Clone();
            }
            // an event ("event": ...): not the answer
        }
    }

    private static string Stderr(StringBuilder stderr)
    {
        Thread.Sleep(200); // what QEMU printed as it exited
        lock (stderr)
        {
            return stderr.ToString();
        }
    }

    private static string FindQemu()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, "qemu-system-x86_64");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new InvalidOperationException(
            "qemu-system-x86_64 is not on PATH: this test runs QEMU as a VFIO client against vfiolab serve; "
            + "install it with `bash .ci/install-prereqs.sh` (Debian's qemu-system-x86)");
    }

    private static ulong Hex(string digits) => ulong.Parse(digits, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"pci 0000:00:01\.0: BAR 0 \[mem 0x(?<start>[0-9a-f]+)-0x[0-9a-f]+ 64bit\]")]
    private static partial Regex GuestBar();

    [GeneratedRegex(@"^  iova 0x(?<iova>[0-9a-f]+) size 0x(?<size>[0-9a-f]+) vaddr 0x[0-9a-f]+$", RegexOptions.Multiline)]
    private static partial Regex CtlMappingLine();

    [GeneratedRegex(@"at exit, container /dev/vfio/vfio \(model fd \d+\), groups \[(?<groups>[^\]]*)\], (?<count>\d+) mapping\(s\), locked_vm (?<locked>\d+) bytes")]
    private static partial Regex ContainerAtExit();

    [GeneratedRegex(@"^  iova 0x(?<iova>[0-9a-f]+) size 0x(?<size>[0-9a-f]+) vaddr 0x(?<vaddr>[0-9a-f]+) (?<prot>[r-][w-]) locked (?<locked>\d+) page\(s\)$", RegexOptions.Multiline)]
    private static partial Regex MappingLine();
}
