namespace Kvm;

/// <summary>
/// The image is corrupt, truncated, or a count or size read from it exceeds a <see cref="KvmLimits"/> cap.
/// The message names the file and the offset where the problem was found.
/// </summary>
public sealed class CorruptImageException : KvmException
{
    /// <summary>Creates the exception.</summary>
    public CorruptImageException(string message, Exception? innerException = null)
        : base(KvmErrorCode.CorruptImage, message, innerException)
    {
    }
}
