namespace VfioLab.Abi;

/// <summary>One field of a C struct: its C name (as <c>offsetof</c> takes it) and its byte offset.</summary>
/// <param name="CName">The field's name in <c>linux/vfio.h</c>, e.g. <c>iova_pgsizes</c>.</param>
/// <param name="Offset"><c>offsetof</c> the field on x86-64.</param>
public readonly record struct AbiFieldLayout(string CName, int Offset);
