namespace VfioLab.Examples.Tests;

/// <summary>Byte sizes, so a layout reads as a VMM author writes it.</summary>
internal static class Size
{
    public const ulong KiB = 1UL << 10;
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;
    public const ulong Page = 4 * KiB;
}
