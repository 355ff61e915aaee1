using VfioLab.Scenarios.Model;

namespace VfioLab.Scenarios.Parsing;

/// <summary>The names a step may refer to, as parsing walks the steps in order: declared processes and devices, <c>fork</c> children, and <c>as:</c> bindings made by earlier steps.</summary>
internal sealed class StepContext
{
    private readonly List<string> _processes;
    private readonly List<string> _devices;
    private readonly Dictionary<string, SourceLocation> _bindings = new(StringComparer.Ordinal);

    public StepContext(IEnumerable<string> processes, IEnumerable<string> devices)
    {
        _processes = [.. processes];
        _devices = [.. devices];
    }

    public void CheckProcess(string name, SourceLocation location, string what)
    {
        if (!_processes.Contains(name))
        {
            ScenarioThrowHelper.ThrowParse(location, $"{what}: unknown process '{name}'; known: {List(_processes)}");
        }
    }

    public void CheckDevice(string name, SourceLocation location, string what)
    {
        if (!_devices.Contains(name))
        {
            ScenarioThrowHelper.ThrowParse(location, $"{what}: unknown device '{name}'; known: {List(_devices)}");
        }
    }

    public void CheckBound(string name, SourceLocation location, string what)
    {
        if (!_bindings.ContainsKey(name))
        {
            ScenarioThrowHelper.ThrowParse(location, $"{what}: unknown name '{name}'; names bound by earlier steps' as: {List(_bindings.Keys)}");
        }
    }

    public void CheckUnbound(string name, SourceLocation location, string what)
    {
        if (_bindings.TryGetValue(name, out SourceLocation first))
        {
            ScenarioThrowHelper.ThrowParse(location, $"{what}: duplicate binding name '{name}', first bound at {first.Line}:{first.Column}");
        }
    }

    public void Bind(string name, SourceLocation location, bool isProcess)
    {
        _bindings.Add(name, location);
        if (isProcess && !_processes.Contains(name))
        {
            _processes.Add(name);
        }
    }

    private static string List(IEnumerable<string> names)
    {
        string joined = string.Join(", ", names);
        return joined.Length == 0 ? "none" : joined;
    }
}
