namespace VfioLab.Lab;

/// <summary>When a <see cref="LabHost"/> checks its invariants by itself.</summary>
public enum InvariantChecking
{
    /// <summary>Only when asked (<see cref="LabHost.CheckInvariants()"/>).</summary>
    OnDemand,

    /// <summary>After every system call of every <see cref="LabProcess"/> surface; a violation throws
    /// <see cref="InvariantViolationException"/> from the call that caused it.</summary>
    AfterEveryCall,
}
