using VfioLab.Abi;

namespace VfioLab.Client;

/// <summary>The MIGRATION capability: dirty-page tracking's page sizes and the largest bitmap one call may ask for.</summary>
public sealed record MigrationInfo(uint Flags, ulong PgsizeBitmap, ulong MaxDirtyBitmapSize);
