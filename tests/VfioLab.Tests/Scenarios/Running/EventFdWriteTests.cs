using VfioLab.Scenarios;
using VfioLab.Scenarios.Parsing;
using VfioLab.Scenarios.Running;

namespace VfioLab.Tests.Scenarios.Running;

/// <summary><c>eventfd_write</c>: write(2) on an eventfd, and the INTx unmask eventfd (SET_IRQS ACTION_UNMASK with
/// DATA_EVENTFD) that a write unmasks through, as the kernel's virqfd does; every errno with the counter after it.</summary>
public sealed class EventFdWriteTests
{
    private const string Host = PciStepTests.EduOpened + """
          - eventfd: { as: trig }
          - eventfd: { as: unm }
          - set_irqs: { fd: dev, index: 0, count: 1, flags: [DATA_EVENTFD, ACTION_TRIGGER], eventfds: [trig] }

        """;

    private static (ScenarioSession Session, List<string> Problems) Run(string steps)
    {
        ScenarioDocument doc = ScenarioParser.Parse(Host + steps, "edu-intx.yaml");
        var session = new ScenarioSession(doc, new RunOptions());
        var problems = new List<string>();
        for (int i = 0; i < doc.Steps.Count; i++)
        {
            problems.AddRange(session.Execute(i).Problems);
        }
        return (session, problems);
    }

    [Fact]
    public void WriteToTheUnmaskEventFd_UnmasksIntx_AndTheVirqfdTakesTheCount()
    {
        // The edu's INTx is a level nobody deasserts here: the unmask finds it still asserted, masks again and sends it
        // to the user again (vfio_pci_intx_unmask_handler), so the trigger counts one more and INTx stays masked.
        (ScenarioSession session, List<string> problems) = Run("""
              - set_irqs: { fd: dev, index: 0, count: 1, flags: [DATA_EVENTFD, ACTION_UNMASK], eventfds: [unm] }
              - device_interrupt: { device: edu, index: intx, expect: { delivered: true } }
              - eventfd_read: { fd: trig, expect: { count: 1 } }
              - eventfd_write: { fd: unm, expect: { result: 8 } }
              - eventfd_read: { fd: unm, expect: EAGAIN }
              - eventfd_read: { fd: trig, expect: { count: 1 } }
              - device_interrupt: { device: edu, index: intx, expect: { delivered: false } }
              - eventfd_write: { fd: unm, value: 2 }
              - eventfd_read: { fd: trig, expect: { count: 1 } }
              - check: { invariants: clean }
            """);
        Assert.Empty(problems);
        Assert.True(session.Host.Device("edu").Irqs!.IntxMasked);
        Assert.True(session.Host.Device("edu").Irqs!.IntxUnmaskEventFd);
    }

    [Fact]
    public void WithoutTheWrite_NothingIsSentAgain()
    {
        (ScenarioSession session, List<string> problems) = Run("""
              - set_irqs: { fd: dev, index: 0, count: 1, flags: [DATA_EVENTFD, ACTION_UNMASK], eventfds: [unm] }
              - device_interrupt: { device: edu, index: intx, expect: { delivered: true } }
              - eventfd_read: { fd: trig, expect: { count: 1 } }
              - device_interrupt: { device: edu, index: intx, expect: { delivered: false } }
              - eventfd_read: { fd: trig, expect: EAGAIN }
            """);
        Assert.Empty(problems);
        Assert.True(session.Host.Device("edu").Irqs!.IntxMasked);
    }

    [Fact]
    public void AWriteBeforeTheUnmaskEventFdIsSet_RunsTheUnmaskWhenItIsSet()
    {
        // vfio_virqfd_enable: an event already pending on the eventfd runs the handler at once, without taking it.
        (_, List<string> problems) = Run("""
              - device_interrupt: { device: edu, index: intx, expect: { delivered: true } }
              - eventfd_write: { fd: unm }
              - set_irqs: { fd: dev, index: 0, count: 1, flags: [DATA_EVENTFD, ACTION_UNMASK], eventfds: [unm] }
              - eventfd_read: { fd: trig, expect: { count: 2 } }
              - eventfd_read: { fd: unm, expect: { count: 1 } }
            """);
        Assert.Empty(problems);
    }

    [Fact]
    public void AfterIntxIsDisabled_AWriteOnlyCounts()
    {
        (ScenarioSession session, List<string> problems) = Run("""
              - set_irqs: { fd: dev, index: 0, count: 1, flags: [DATA_EVENTFD, ACTION_UNMASK], eventfds: [unm] }
              - set_irqs: { fd: dev, index: 0, count: 0, flags: [DATA_NONE, ACTION_TRIGGER] }
              - eventfd_write: { fd: unm, value: 3 }
              - eventfd_read: { fd: unm, expect: { count: 3 } }
              - eventfd_read: { fd: trig, expect: EAGAIN }
            """);
        Assert.Empty(problems);
        Assert.False(session.Host.Device("edu").Irqs!.IntxUnmaskEventFd);
    }

    [Fact]
    public void Errnos_LeaveTheCounterAsItWas()
    {
        (_, List<string> problems) = Run("""
              - eventfd_write: { fd: trig, value: 5 }
              - eventfd_write: { fd: trig, value: 0xffffffffffffffff, expect: EINVAL }
              - eventfd_write: { fd: dev, expect: EINVAL }
              - eventfd_write: { fd: 999, expect: EBADF }
              - eventfd_read: { fd: trig, expect: { count: 5 } }
              - eventfd_write: { fd: unm, value: 0xfffffffffffffffe }
              - eventfd_write: { fd: unm, value: 1, expect: EAGAIN }
              - eventfd_write: { fd: unm, value: 0 }
            """);
        Assert.Empty(problems);
    }
}
