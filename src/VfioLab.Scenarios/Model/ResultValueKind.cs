namespace VfioLab.Scenarios.Model;

/// <summary>The shape of a <see cref="ResultValue"/>.</summary>
internal enum ResultValueKind
{
    Unsigned,
    Signed,
    Bool,
    String,
    Bytes,
    List,
    Map,
}
