namespace VfioLab.Abi;

/// <summary>
/// Every fact this project takes from <c>linux/vfio.h</c>, under its C name: each struct's <c>sizeof</c> and field
/// offsets, each request code, and each constant (extension ids, flag bits, capability ids, indexes).
/// </summary>
/// <remarks>
/// The header conformance test compiles a C program against the system's <c>linux/vfio.h</c> that prints the same
/// facts, and fails on any difference. The entries are built from the structs' <c>Offsets</c> and the enums
/// themselves, so the test checks the code that encodes and decodes, not a copy of it.
/// </remarks>
public static partial class AbiLayout
{
    /// <summary>Every struct, with its size and fields.</summary>
    public static IReadOnlyList<AbiStructLayout> Structs { get; } =
    [
        VfioInfoCapHeader.Layout,
        VfioGroupStatus.Layout,
        VfioDeviceInfo.Layout,
        VfioRegionInfo.Layout,
        VfioRegionSparseMmapArea.Layout,
        VfioRegionInfoCapSparseMmap.Layout,
        VfioRegionInfoCapType.Layout,
        VfioRegionInfoCapNvlink2Ssatgt.Layout,
        VfioRegionInfoCapNvlink2Lnkspd.Layout,
        VfioIrqInfo.Layout,
        VfioIrqSet.Layout,
        VfioPciDependentDevice.Layout,
        VfioPciHotResetInfo.Layout,
        VfioPciHotReset.Layout,
        VfioIommuType1Info.Layout,
        VfioIovaRange.Layout,
        VfioIommuType1InfoCapIovaRange.Layout,
        VfioIommuType1InfoCapMigration.Layout,
        VfioIommuType1InfoDmaAvail.Layout,
        VfioIommuType1DmaMap.Layout,
        VfioBitmap.Layout,
        VfioIommuType1DmaUnmap.Layout,
        VfioIommuType1DirtyBitmap.Layout,
        VfioIommuType1DirtyBitmapGet.Layout,
        VfioIommuSpaprTceDdwInfo.Layout,
        VfioIommuSpaprTceInfo.Layout,
        VfioEehPeErr.Layout,
        VfioEehPeOp.Layout,
        VfioIommuSpaprRegisterMemory.Layout,
        VfioIommuSpaprTceCreate.Layout,
        VfioIommuSpaprTceRemove.Layout,
    ];

    /// <summary>Every request code of <see cref="VfioIoctl"/> under its C macro name.</summary>
    public static IReadOnlyList<AbiConstant> RequestCodes { get; } =
        [.. VfioIoctl.All.Select(i => new AbiConstant(i.Name, i.Code))];

    /// <summary>Every other constant under its C macro name: <c>VFIO_API_VERSION</c>, <see cref="VfioExtension"/>,
    /// each flag and id enum (its short names with the struct's prefix), the vfio-pci indexes and counts.</summary>
    public static IReadOnlyList<AbiConstant> Constants { get; } = BuildConstants();
}
