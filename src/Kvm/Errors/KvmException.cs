namespace Kvm;

/// <summary>
/// Base class of the domain errors raised by the library. Messages follow libkvm's style: terse,
/// lower-case, context first, addresses in <c>0x…</c> form, so the same text reads well in
/// <c>kvm_geterr</c> and in .NET.
/// </summary>
public class KvmException : Exception
{
    /// <summary>Creates an exception with the given code and message.</summary>
    public KvmException(KvmErrorCode code, string message)
        : base(message)
    {
        Code = code;
    }

    /// <summary>Creates an exception with the given code, message and inner exception.</summary>
    public KvmException(KvmErrorCode code, string message, Exception? innerException)
        : base(message, innerException)
    {
        Code = code;
    }

    /// <summary>The error category.</summary>
    public KvmErrorCode Code { get; }
}
