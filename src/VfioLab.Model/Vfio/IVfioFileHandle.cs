namespace VfioLab.Vfio;

/// <summary>A reference-counted open file as the VFIO core holds it (get_file/fput on struct file).</summary>
internal interface IVfioFileHandle
{
    /// <summary>get_file: one more reference.</summary>
    void AddReference();

    /// <summary>fput: one reference less; the last one runs the file's release.</summary>
    void DropReference();
}
