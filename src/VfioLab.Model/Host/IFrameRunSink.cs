namespace VfioLab.Host;

/// <summary>Where <see cref="PhysicalMemory.AllocateRuns{TSink}"/> hands the runs it allocates, in order, under the
/// physical-memory lock (so it must take no lock): an array, or a populate's page-table writer.</summary>
internal interface IFrameRunSink
{
    /// <summary>How many more runs it takes.</summary>
    int Room { get; }

    /// <summary>Takes the next run.</summary>
    void Add(PfnRun run);
}
