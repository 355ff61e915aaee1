namespace VfioLab.Scenarios;

/// <summary>The shape of a <see cref="ResultValue"/>.</summary>
public enum ResultValueKind
{
    /// <summary>An unsigned integer (<see cref="ResultValue.Unsigned"/>): addresses, sizes, counts.</summary>
    Unsigned,

    /// <summary>A signed integer (<see cref="ResultValue.Signed"/>): a return value, negative on failure.</summary>
    Signed,

    /// <summary>A boolean (<see cref="ResultValue.Bool"/>).</summary>
    Bool,

    /// <summary>Text (<see cref="ResultValue.Text"/>): an errno name, a word, a summary.</summary>
    String,

    /// <summary>Bytes (<see cref="ResultValue.Text"/> holds them as lower-case hex without spaces).</summary>
    Bytes,

    /// <summary>A list (<see cref="ResultValue.Items"/>).</summary>
    List,

    /// <summary>A nested map of fields (<see cref="ResultValue.Fields"/>).</summary>
    Map,
}
