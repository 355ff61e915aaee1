using VfioLab.Scenarios;
using VfioLab.Scenarios.Parsing;
using VfioLab.Scenarios.Running;

namespace VfioLab.Tests.Scenarios.Running;

/// <summary>The vfio-pci steps run end to end on QEMU's edu device as the real-kernel rig measured it: device info,
/// the 256-byte config region, IRQ info (INTx 1, MSI 1, MSI-X 0, ERR EINVAL, REQ 1), config reads and BAR sizing,
/// an MSI delivered to an eventfd, and the device's state unchanged by a refused call.</summary>
public sealed class PciStepTests
{
    /// <summary>QEMU's edu as the rig measured it, opened through a type1 v2 container as <c>dev</c>: the start of
    /// every edu scenario here (steps follow, indented as list items under <c>steps:</c>).</summary>
    internal const string EduOpened = """
        vfiolab: 1
        name: edu
        host: { memory: 256MiB }
        devices:
          - name: edu
            address: "0000:00:03.0"
            bars: [ { index: 0, size: 1MiB, is64bit: false } ]
            ids: { vendor: 0x1234, device: 0x11e8, class: 0x00ff00 }
            express: false
            reset: none
            irqs: { intx: 1, msi: 1, msix: 0 }
        steps:
          - open: { path: /dev/vfio/vfio, as: container }
          - open: { path: /dev/vfio/0, as: group }
          - group_set_container: { fd: group, container: container }
          - set_iommu: { fd: container, type: VFIO_TYPE1v2_IOMMU }
          - get_device_fd: { fd: group, name: "0000:00:03.0", as: dev }

        """;

    private const string Edu = EduOpened + """
          - device_get_info: { fd: dev, expect: { flags: 2, num_regions: 9, num_irqs: 5 } }
          - device_get_region_info: { fd: dev, index: 7, expect: { size: 256, flags: 3 } }
          - device_get_irq_info: { fd: dev, index: 0, expect: { count: 1, flags: [EVENTFD, MASKABLE, AUTOMASKED] } }
          - device_get_irq_info: { fd: dev, index: 1, expect: { count: 1, noresize: true } }
          - device_get_irq_info: { fd: dev, index: 2, expect: { count: 0 } }
          - device_get_irq_info: { fd: dev, index: 3, expect: EINVAL }
          - device_get_irq_info: { fd: dev, index: 4, expect: { count: 1 } }
          - region_read: { fd: dev, index: 7, size: 4, expect: { data: "34 12 e8 11", result: 4 } }
          - region_write: { fd: dev, index: 7, offset: 0x10, data: "ff ff ff ff" }
          - region_read: { fd: dev, index: 7, offset: 0x10, size: 4, expect: { data: "00 00 f0 ff" } }
          - region_read: { fd: dev, index: 7, offset: 0xfe, size: 4, expect: EFAULT }
          - device_reset: { fd: dev, expect: EINVAL }
          - eventfd: { as: efd }
          - set_irqs: { fd: dev, index: 1, flags: [DATA_EVENTFD, ACTION_TRIGGER], eventfds: [efd] }
          - set_irqs: { fd: dev, index: 0, count: 1, flags: [DATA_EVENTFD, ACTION_TRIGGER], eventfds: [efd], expect: EINVAL }
          - device_interrupt: { device: edu, index: msi, expect: { delivered: true } }
          - eventfd_read: { fd: efd, expect: { count: 1 } }
          - eventfd_read: { fd: efd, expect: EAGAIN }
          - set_irqs: { fd: dev, index: 1, flags: [DATA_NONE, ACTION_TRIGGER] }
          - device_interrupt: { device: edu, index: msi, expect: { delivered: false } }
          - device_feature: { fd: dev, feature: 1, flags: [PROBE, GET], expect: ENOTTY }
          - device_feature: { fd: dev, feature: 3, flags: [PROBE, SET] }
          - check: { invariants: clean }
        """;

    [Fact]
    public void EduScenario_EveryStepMeetsItsExpectation()
    {
        ScenarioDocument doc = ScenarioParser.Parse(Edu, "edu.yaml");
        var session = new ScenarioSession(doc, new RunOptions());
        var problems = new List<string>();
        for (int i = 0; i < doc.Steps.Count; i++)
        {
            problems.AddRange(session.Execute(i).Problems);
        }
        Assert.Empty(problems);
        Assert.Null(session.Host.Device("edu").Irqs!.Enabled);
    }
}
