using VfioLab.Scenarios;

namespace VfioLab.Tests.Vfio.Group;

/// <summary>VFIO_GROUP_SET_CONTAINER with an fd that is not a container (here the group's own fd): EINVAL on 6.1, EBADFD
/// since v6.2's iommufd compatibility (an fd that is neither a container nor an iommufd), as the conformance rig saw on
/// Debian's 6.1 and 6.12. The group is left without a container either way.</summary>
public sealed class SetContainerNotAContainerTests
{
    [Theory]
    [InlineData("linux-6.1", "EINVAL")]
    [InlineData("linux-6.12", "EBADFD")]
    [InlineData("linux-6.18", "EBADFD")]
    [InlineData("seeds", "EBADFD")]
    public void AGroupFdAsTheContainer_IsRefusedWithTheProfilesErrno(string kernel, string errno)
    {
        ScenarioOutcome outcome = ScenarioRunner.Run(ScenarioDocument.Parse($$"""
            vfiolab: 1
            name: not-a-container
            host: { memory: 1GiB, kernel: {{kernel}} }
            devices:
              - { name: nic, address: "0000:00:10.0", group: 2, bars: [ { index: 0, size: 1MiB } ] }
            steps:
              - open: { path: /dev/vfio/2, as: g }
              - group_set_container: { fd: g, container: g, expect: {{errno}} }
              - group_get_status: { fd: g, expect: { viable: true, container_set: false } }
              - open: { path: /dev/vfio/vfio, as: c }
              - group_set_container: { fd: g, container: c }
            """, "not-a-container.yaml"));

        Assert.True(outcome.Passed, string.Join('\n', outcome.Steps.Where(s => !s.Passed)));
    }
}
