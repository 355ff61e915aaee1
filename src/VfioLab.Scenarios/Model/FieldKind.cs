namespace VfioLab.Scenarios.Model;

/// <summary>What a step field holds, and so which accessor of <see cref="StepArgs"/> returns it.</summary>
internal enum FieldKind
{
    /// <summary>A size or address, literal or <c>as:</c> reference plus offset: <see cref="StepArgs.GetValue"/>.</summary>
    Value,

    /// <summary>A literal number in any size form (a count, an index, a shift): <see cref="StepArgs.GetNumber"/>.</summary>
    Number,

    /// <summary>Free text (a path, a device name): <see cref="StepArgs.GetString"/>.</summary>
    String,

    /// <summary>One of a fixed list of words: <see cref="StepArgs.GetString"/>.</summary>
    Choice,

    /// <summary>true/false/on/off: <see cref="StepArgs.GetBool"/>.</summary>
    Bool,

    /// <summary>A list of flag short names: <see cref="StepArgs.GetNames"/>.</summary>
    Flags,

    /// <summary>Hex bytes: <see cref="StepArgs.GetBytes"/> (or the text with <see cref="StepArgs.GetString"/>).</summary>
    HexData,

    /// <summary>A nested map with its own schema: <see cref="StepArgs.GetMap"/>.</summary>
    Map,

    /// <summary>A list of values (fds): <see cref="StepArgs.GetValues"/>.</summary>
    ValueList,

    /// <summary>A <c>linux/vfio.h</c> name or a number: <see cref="StepArgs.GetSymbol"/>.</summary>
    Symbol,

    /// <summary><c>ok</c>, an errno, a map, or an allowed outcome word: <see cref="StepArgs.GetExpectation"/>.</summary>
    Expect,

    /// <summary>Bytes or <c>unlimited</c> (ulong.MaxValue): <see cref="StepArgs.GetValue"/> gives a literal.</summary>
    Memlock,

    /// <summary>A declared process name or a <c>fork</c> binding: <see cref="StepArgs.GetString"/>.</summary>
    Process,

    /// <summary>A declared device name: <see cref="StepArgs.GetString"/>.</summary>
    Device,

    /// <summary>A new name bound by <c>as:</c>: <see cref="StepArgs.GetString"/>.</summary>
    Binding,
}
