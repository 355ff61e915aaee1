namespace VfioLab.Abi;

/// <summary>One capability of a GET_INFO reply's chain: where its header sits in the reply, and the header.</summary>
/// <param name="Offset">The header's offset from the start of the reply (what the previous <c>next</c>, or the info
/// struct's <c>cap_offset</c>, said).</param>
/// <param name="Header">The header: the capability's id and version, and the offset of the next one.</param>
public readonly record struct VfioCapability(int Offset, VfioInfoCapHeader Header);
