using VfioLab.Abi;
using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Running;

/// <summary>The sPAPR TCE ioctl steps (SCENARIOS.md "sPAPR"): structs built as <c>linux/vfio.h</c> lays them
/// out, and what the kernel wrote back decoded.</summary>
internal sealed partial class ScenarioSession
{
    /// <summary><c>spapr_tce_get_info</c> → <c>{ flags, dma32_window_start, dma32_window_size, ddw: { pgsizes,
    /// max_dynamic_windows_supported, levels } }</c>.</summary>
    private StepResult SpaprTceGetInfo(ScenarioStep step) =>
        StructIoctl(step, VfioIoctl.IommuSpaprTceGetInfo, VfioIommuSpaprTceInfo.SizeOf, _ => { }, (b, r) =>
        {
            VfioIommuSpaprTceInfo.TryRead(b, out VfioIommuSpaprTceInfo i);
            r.Set("argsz", (ulong)i.Argsz);
            r.Set("flags", ResultValue.FromFlags(i.Flags));
            r.Set("ddw_supported", (i.Flags & SpaprInfoFlags.Ddw) != 0);
            r.Set("dma32_window_start", (ulong)i.Dma32WindowStart);
            r.Set("dma32_window_size", (ulong)i.Dma32WindowSize);
            r.Set("pgsizes", i.Ddw.Pgsizes);
            r.Set("max_dynamic_windows_supported", (ulong)i.Ddw.MaxDynamicWindowsSupported);
            r.Set("levels", (ulong)i.Ddw.Levels);
        });

    /// <summary><c>spapr_register_memory</c> / <c>spapr_unregister_memory: { fd, vaddr, size }</c>.</summary>
    private StepResult SpaprRegisterMemory(ScenarioStep step, uint request)
    {
        var p = new VfioIommuSpaprRegisterMemory { Vaddr = Value(step, "vaddr"), Size = Value(step, "size") };
        return StructIoctl(step, request, VfioIommuSpaprRegisterMemory.SizeOf, b => p.Write(b), null);
    }

    /// <summary><c>spapr_tce_create: { fd, page_shift, window_size, levels }</c> → <c>{ start }</c>, bound by <c>as</c>.</summary>
    private StepResult SpaprTceCreate(ScenarioStep step)
    {
        ulong shift = Value(step, "page_shift");
        ulong levels = ValueOr(step, "levels", 1);
        if (shift > uint.MaxValue || levels > uint.MaxValue)
        {
            throw new StepFailure(step.Location, $"page_shift 0x{shift:x} or levels 0x{levels:x} does not fit the u32 field");
        }
        var c = new VfioIommuSpaprTceCreate { PageShift = (uint)shift, WindowSize = Value(step, "window_size"), Levels = (uint)levels };
        return StructIoctl(step, VfioIoctl.IommuSpaprTceCreate, VfioIommuSpaprTceCreate.SizeOf, b => c.Write(b), (b, r) =>
        {
            VfioIommuSpaprTceCreate.TryRead(b, out VfioIommuSpaprTceCreate o);
            r.Set("start", o.StartAddr);
            r.Set("start_addr", o.StartAddr);
            r.Set(BindField, o.StartAddr);
        });
    }

    /// <summary><c>spapr_tce_remove: { fd, start }</c>.</summary>
    private StepResult SpaprTceRemove(ScenarioStep step)
    {
        var rm = new VfioIommuSpaprTceRemove { StartAddr = Value(step, "start") };
        return StructIoctl(step, VfioIoctl.IommuSpaprTceRemove, VfioIommuSpaprTceRemove.SizeOf, b => rm.Write(b), null);
    }
}
