namespace VfioLab.Host;

/// <summary>Who is calling a file operation (current, plus the struct file being operated on).</summary>
/// <param name="Machine">The host.</param>
/// <param name="Process">The calling process (current).</param>
/// <param name="File">The open file the call is on.</param>
internal readonly record struct SyscallContext(Machine Machine, Process Process, OpenFile File);
