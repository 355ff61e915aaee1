using System.Globalization;

namespace VfioLab.Pci;

/// <summary>
/// A PCI function's address, domain:bus:device.function (<c>0000:01:00.0</c>), the name Linux gives
/// a PCI device (<c>pci_name()</c>, <c>dev_name()</c>) and the key of hot-reset scope: functions with
/// the same domain and bus share a bus; the same bus and device number share a slot.
/// </summary>
internal readonly record struct PciAddress(int Domain, int Bus, int Device, int Function) : IComparable<PciAddress>
{
    /// <summary>Parses <c>DDDD:BB:DD.F</c> (hex; the domain may be omitted: <c>01:00.0</c>).</summary>
    public static bool TryParse(string text, out PciAddress address)
    {
        address = default;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }
        string[] colon = text.Split(':');
        if (colon.Length is not (2 or 3))
        {
            return false;
        }
        string domainText = colon.Length == 3 ? colon[0] : "0";
        string busText = colon[^2];
        string[] dot = colon[^1].Split('.');
        if (dot.Length != 2 ||
            !TryHex(domainText, 0xffff, out int domain) ||
            !TryHex(busText, 0xff, out int bus) ||
            !TryHex(dot[0], 0x1f, out int device) ||
            !TryHex(dot[1], 0x7, out int function))
        {
            return false;
        }
        address = new PciAddress(domain, bus, device, function);
        return true;
    }

    /// <summary>Parses or throws <see cref="FormatException"/>; for in-process callers with known-good text.</summary>
    public static PciAddress Parse(string text) =>
        TryParse(text, out PciAddress a) ? a : throw new FormatException($"not a PCI address: '{text}'");

    /// <summary>The slot this function sits in: same domain, bus and device number.</summary>
    public (int Domain, int Bus, int Device) Slot => (Domain, Bus, Device);

    /// <summary>The bus this function sits on.</summary>
    public (int Domain, int Bus) BusKey => (Domain, Bus);

    /// <summary>Whether both functions share a slot.</summary>
    public bool SameSlot(PciAddress other) => Slot == other.Slot;

    /// <summary>Whether both functions share a bus.</summary>
    public bool SameBus(PciAddress other) => BusKey == other.BusKey;

    /// <inheritdoc />
    public int CompareTo(PciAddress other)
    {
        int c = Domain.CompareTo(other.Domain);
        if (c == 0)
        {
            c = Bus.CompareTo(other.Bus);
        }
        if (c == 0)
        {
            c = Device.CompareTo(other.Device);
        }
        return c != 0 ? c : Function.CompareTo(other.Function);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Domain:x4}:{Bus:x2}:{Device:x2}.{Function:x1}";

    private static bool TryHex(string s, int max, out int value)
    {
        value = 0;
        if (s.Length == 0 || s.Length > 4 ||
            !int.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value))
        {
            return false;
        }
        return value <= max;
    }
}
