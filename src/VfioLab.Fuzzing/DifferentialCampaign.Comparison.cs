using System.Buffers.Binary;
using System.Globalization;
using VfioLab.Lab;

namespace VfioLab.Fuzzing;

// What an execution compares after every operation: results, the user bitmap, locked_vm, mapping count,
// pins, translations and external pins, model against reference.
internal sealed partial class DifferentialCampaign
{
    private sealed partial class Execution
    {
        // locked_vm of every live process, the mapping count, every frame's pins, every page's translation in every domain.
        private string? CompareState()
        {
            foreach (LabProcess? p in new[] { _parent, ChildAlive ? _child : null })
            {
                if (p is not null && (long)p.LockedVmPages != _reference.LockedVm.GetValueOrDefault(p.Pid))
                {
                    return $"locked_vm of pid {p.Pid}: the model 0x{p.LockedVmPages:x} pages, the reference 0x{_reference.LockedVm.GetValueOrDefault(p.Pid):x}";
                }
            }
            LabContainer container = Container();
            if (container.MappingCount != (ulong)_reference.Mappings.Count)
            {
                return $"mappings: the model {container.MappingCount}, the reference {_reference.Mappings.Count}";
            }
            Dictionary<ulong, ulong> pins = _reference.Pins();
            ulong total = 0;
            foreach ((ulong pfn, ulong count) in pins)
            {
                total += count;
                if (_host.PinCount(pfn) != count)
                {
                    return $"pins of pfn 0x{pfn:x}: the model {_host.PinCount(pfn)}, the reference {count}";
                }
            }
            if (_host.TotalPins != total)
            {
                return $"total pins: the model {_host.TotalPins}, the reference {total}";
            }
            string? pins2 = CompareExternalPins(container);
            if (pins2 is not null)
            {
                return pins2;
            }
            foreach (int g in _reference.Groups)
            {
                LabDomain? d = _groupDevices[g].Domain;
                if (d is null)
                {
                    return $"group {g} is attached in the reference but has no domain in the model";
                }
                ulong mapped = 0;
                foreach (LabIommuRun run in d.Runs)
                {
                    mapped += run.Last - run.Iova + 1;
                }
                ulong expectedBytes = 0;
                foreach (Type1Reference.Mapping m in _reference.Mappings.Values)
                {
                    expectedBytes += m.Size;
                    for (int i = 0; i < m.Pfns.Length; i++)
                    {
                        ulong iova = m.Iova + ((ulong)i * 0x1000);
                        // iommu_iova_to_phys: 0 for a hole.
                        ulong phys = d.IovaToPhys(iova) ?? 0;
                        if (phys != m.Pfns[i] * 0x1000)
                        {
                            return $"group {g}'s domain translates 0x{iova:x} to 0x{phys:x}, the reference to 0x{m.Pfns[i] * 0x1000:x}";
                        }
                    }
                }
                if (mapped != expectedBytes)
                {
                    return $"group {g}'s domain maps 0x{mapped:x} bytes, the reference 0x{expectedBytes:x}";
                }
            }
            return null;
        }

        // Every mapping's external pins (page, frame, reference count) and the vendor driver's own count.
        private string? CompareExternalPins(LabContainer container)
        {
            ulong held = 0;
            if (container.VaddrInvalidCount != _reference.VaddrInvalidCount)
            {
                return $"vaddr_invalid_count: the model {container.VaddrInvalidCount}, the reference {_reference.VaddrInvalidCount}";
            }
            string? holds = CompareDeviceHolds(container);
            if (holds is not null)
            {
                return holds;
            }
            IReadOnlyList<LabExternalPinRun> external = container.ExternalPins;
            int assigned = 0;
            foreach (LabMapping dma in container.Mappings)
            {
                Type1Reference.Mapping? m = _reference.Find(dma.Iova);
                if (m is null || m.Iova != dma.Iova)
                {
                    return $"the model has a mapping at 0x{dma.Iova:x}, the reference none";
                }
                string? owner = CompareOwnership(dma, m);
                if (owner is not null)
                {
                    return owner;
                }
                var actual = new SortedDictionary<ulong, (ulong Pfn, uint Refs)>();
                foreach (LabExternalPinRun run in external)
                {
                    if (run.Iova < dma.Iova || run.Iova - dma.Iova >= dma.Size)
                    {
                        continue;
                    }
                    assigned++;
                    for (ulong i = 0; i < run.Pages; i++)
                    {
                        actual[m.PageOf(run.Iova) + i] = (run.Pfn + i, run.RefCount);
                    }
                }
                if (!actual.SequenceEqual(m.Vpfns))
                {
                    return $"external pins of the mapping at 0x{m.Iova:x} (page: pfn x refs): the model {{{Pins(actual)}}}, the reference {{{Pins(m.Vpfns)}}}";
                }
                foreach ((_, uint refs) in actual.Values)
                {
                    held += refs;
                }
            }
            if (assigned != external.Count)
            {
                return $"{external.Count - assigned} runs of external pins lie outside every mapping";
            }
            return _mdev.PinsHeld == held ? null : $"the mdev driver holds {_mdev.PinsHeld} pins, type1 counts {held}";
        }

        // What the VADDR update changes: the invalid flag, the user address, the owner and the mapping's own charge.
        private static string? CompareOwnership(LabMapping dma, Type1Reference.Mapping m)
        {
            if (dma.VaddrInvalid != m.VaddrInvalid)
            {
                return $"vaddr_invalid of the mapping at 0x{m.Iova:x}: the model {dma.VaddrInvalid}, the reference {m.VaddrInvalid}";
            }
            if (dma.Vaddr != m.Vaddr || dma.OwnerPid != m.Owner)
            {
                return $"the mapping at 0x{m.Iova:x}: the model's vaddr 0x{dma.Vaddr:x} owned by pid {dma.OwnerPid}, the reference's 0x{m.Vaddr:x} by pid {m.Owner}";
            }
            return dma.LockedPages == m.LockedVm ? null : $"locked_vm of the mapping at 0x{m.Iova:x}: the model 0x{dma.LockedPages:x} pages, the reference 0x{m.LockedVm:x}";
        }

        private static string Pins(SortedDictionary<ulong, (ulong Pfn, uint Refs)> pins) =>
            string.Join(", ", pins.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key}: 0x{p.Value.Pfn:x} x{p.Value.Refs}")));

        private string? Results(string what, long ret, long expected)
        {
            _figures.Reached(what, ret);
            return ret == expected ? null : $"{what}: the model returned {Describe(ret)}, the reference {Describe(expected)}";
        }

        private string? CompareBitmap(int words, ulong[] expected)
        {
            byte[] bytes = new byte[words * 8];
            _parent.Syscalls.ReadMemory(DifferentialRig.Bitmap, bytes);
            for (int w = 0; w < words; w++)
            {
                ulong actual = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(w * 8));
                if (actual != expected[w])
                {
                    return $"dirty bitmap word {w}: the model 0x{actual:x16}, the reference 0x{expected[w]:x16}";
                }
            }
            return null;
        }
    }
}
