using System.Reflection;

namespace VfioLab.Bench;

/// <summary>
/// Which run maps hold the memory (issue 16): walks the object graph from a root by reflection, stops at each
/// <c>RunMap&lt;T&gt;</c> or <c>FrameCountMap</c> and reports its runs, packed leaves and <c>ApproximateBytes</c> under the field that
/// holds it (e.g. <c>PhysicalMemory._refs</c>). Maps of the same field are summed (one per domain, process).
/// For the <c>--shattered-memory</c> probe; reflection is fine in a measuring tool and keeps the model's
/// fields private.
/// </summary>
internal static class RunMapCensus
{
    public static IEnumerable<string> Lines(object root, ulong pages)
    {
        var totals = new SortedDictionary<string, (long Bytes, long Runs, long Packed, int Maps)>(StringComparer.Ordinal);
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<object>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            object o = pending.Pop();
            Type t = o.GetType();
            if (t.IsArray)
            {
                if (!t.GetElementType()!.IsValueType)
                {
                    foreach (object? e in (Array)o)
                    {
                        if (e is not null && seen.Add(e))
                        {
                            pending.Push(e);
                        }
                    }
                }
                continue;
            }
            for (Type? c = t; c is not null && c != typeof(object); c = c.BaseType)
            {
                foreach (FieldInfo f in c.GetFields(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly))
                {
                    if (f.FieldType.IsPrimitive || f.FieldType.IsEnum || f.FieldType == typeof(string) || f.GetValue(o) is not { } v)
                    {
                        continue;
                    }
                    Type vt = v.GetType();
                    // A FrameCountMap or FrameFlagMap (runs plus dense windows) is counted whole, like a run map.
                    if ((vt.IsGenericType && vt.GetGenericTypeDefinition().Name == "RunMap`1") || vt.Name is "FrameCountMap" or "FrameFlagMap")
                    {
                        if (seen.Add(v))
                        {
                            string key = $"{c.Name}.{f.Name}";
                            totals.TryGetValue(key, out var acc);
                            long bytes = (long)vt.GetMethod("ApproximateBytes", BindingFlags.Instance | BindingFlags.NonPublic)!.Invoke(v, null)!;
                            int runs = (int)vt.GetProperty("Count")!.GetValue(v)!;
                            int packed = (int)vt.GetMethod("PackedLeafCount", BindingFlags.Instance | BindingFlags.NonPublic)!.Invoke(v, null)!;
                            totals[key] = (acc.Bytes + bytes, acc.Runs + runs, acc.Packed + packed, acc.Maps + 1);
                        }
                        continue;
                    }
                    if (!vt.IsValueType && !(vt.IsPointer || typeof(Delegate).IsAssignableFrom(vt) || vt.Namespace?.StartsWith("System.Threading", StringComparison.Ordinal) == true) && seen.Add(v))
                    {
                        pending.Push(v);
                    }
                }
            }
        }
        foreach ((string key, var acc) in totals)
        {
            if (acc.Bytes >= 1 << 20)
            {
                yield return $"  {key}: {acc.Bytes / (double)pages:F1} B/page ({acc.Runs} runs, {acc.Packed} packed leaves, {acc.Maps} maps)";
            }
        }
    }
}
