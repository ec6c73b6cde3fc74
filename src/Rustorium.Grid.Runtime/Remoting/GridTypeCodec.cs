using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Remoting;

/// <summary>
/// Encodes one record type for <see cref="GridValueCodec"/>: the body that follows the type's tag on the wire. Register
/// an instance with <see cref="GridValueCodec.Register{T}"/> (on every client and silo that exchange the type) to make the
/// type usable as a grain method parameter or result.
/// </summary>
/// <typeparam name="T">The record type. The codec encodes exactly this type (a value of a derived class is encoded as
/// <typeparamref name="T"/>), so prefer sealed records.</typeparam>
/// <remarks>
/// <para>
/// The framework writes the tag, and writes <see cref="GridValueTag.Null"/> for a null reference without calling the
/// codec; <see cref="WriteBody"/> always gets a value. A field of a primitive type is written in the primitive encoding of
/// the <see cref="GridWriter"/> (<c>optional&lt;T&gt;</c> when it may be null); a field whose type has a codec of its own
/// (another record, a list) is written as a whole value with <see cref="GridValueCodec.Write{T}"/>, tag included.
/// </para>
/// <para>
/// The body layout behind a tag is fixed forever: to add a field, create a new codec (and type version) with a new tag.
/// <see cref="ReadBody"/> must validate what it reads; anything it throws becomes
/// <see cref="GridErrorCode.ProtocolViolation"/> for the peer that sent the bytes, never a crash.
/// </para>
/// </remarks>
public abstract class GridTypeCodec<T>
{
    /// <summary>Creates the codec for the tag <paramref name="tag"/> (at least <see cref="GridValueTag.FirstApplicationTag"/> for registered codecs).</summary>
    protected GridTypeCodec(uint tag)
    {
        Tag = tag;
    }

    /// <summary>The type's wire tag.</summary>
    public uint Tag { get; }

    /// <summary>Writes the body of <paramref name="value"/> (never null).</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if the value cannot be encoded (too large, a required field missing).</exception>
    public abstract void WriteBody(ref GridWriter writer, T value, GridValueCodec codec);

    /// <summary>Reads a body written by <see cref="WriteBody"/>, validating it.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.ProtocolViolation"/> if the bytes are truncated or invalid.</exception>
    public abstract T ReadBody(ref GridReader reader, GridValueCodec codec);
}
