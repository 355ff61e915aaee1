namespace VfioLab.Scenarios.Model;

/// <summary>An ioctl request or extension as written: a <c>linux/vfio.h</c> name, or a raw number when <see cref="Name"/> is null.</summary>
internal readonly record struct ScenarioSymbol(string? Name, ulong Number, SourceLocation Location)
{
    public bool IsName => Name is not null;

    public override string ToString() => Name ?? $"0x{Number:x}";
}
