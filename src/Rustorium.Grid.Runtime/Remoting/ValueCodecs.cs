using System.Runtime.CompilerServices;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Remoting;

/// <summary>The codec of one declared type, built once per type by <see cref="GridValueCodec"/>: the untyped view.</summary>
internal abstract class ValueCodec
{
    /// <summary>The declared type this codec encodes.</summary>
    public abstract Type Type { get; }

    /// <summary>Writes a boxed value of <see cref="Type"/> (tag and body).</summary>
    public abstract void WriteBoxed(ref GridWriter writer, object? value);

    /// <summary>Reads a value of <see cref="Type"/> (tag and body), boxed.</summary>
    public abstract object? ReadBoxed(ref GridReader reader);
}

/// <summary>The codec of the declared type <typeparamref name="T"/>.</summary>
internal abstract class ValueCodec<T> : ValueCodec
{
    public override Type Type => typeof(T);

    /// <summary>Writes the tag and the body; <see cref="GridValueTag.Null"/> for null.</summary>
    public abstract void Write(ref GridWriter writer, T value);

    /// <summary>Reads the rest of a value whose tag (at offset <paramref name="at"/>) has been read already.</summary>
    public abstract T ReadAfterTag(ref GridReader reader, uint tag, long at);

    public T Read(ref GridReader reader)
    {
        long at = reader.Position;
        uint tag = reader.ReadVarUInt32();
        return ReadAfterTag(ref reader, tag, at);
    }

    public sealed override void WriteBoxed(ref GridWriter writer, object? value)
    {
        switch (value)
        {
            case T typed:
                Write(ref writer, typed);
                return;
            case null when default(T) is null:
                Write(ref writer, default!);
                return;
            default:
                throw GridException.InvalidArgument(
                    $"Cannot encode {(value is null ? "null" : ValueCodecs.Describe(value.GetType()))} as {ValueCodecs.Describe(typeof(T))}.");
        }
    }

    public sealed override object? ReadBoxed(ref GridReader reader) => Read(ref reader);

    /// <summary>The value of a <see cref="GridValueTag.Null"/> tag: null where <typeparamref name="T"/> allows it, a violation otherwise.</summary>
    protected static T NullOrViolation(long at)
    {
        if (default(T) is null) return default!;
        throw GridWireFormat.ProtocolViolation($"Null at offset {at} where a {ValueCodecs.Describe(typeof(T))} is required (it cannot be null).");
    }

    /// <summary>Fails for a tag that is neither Null nor the expected one.</summary>
    protected static GridException Mismatch(uint found, uint expected, long at) =>
        GridWireFormat.ProtocolViolation(
            $"Expected a {ValueCodecs.Describe(typeof(T))} (tag {expected}) at offset {at}; found tag {found}{ValueCodecs.TagName(found)}.");
}

/// <summary>Helpers shared by the value codecs.</summary>
internal static class ValueCodecs
{
    /// <summary>A readable name for a type: <c>byte[]</c>, <c>IReadOnlyList&lt;KeyValue&gt;</c>, <c>Int64?</c>.</summary>
    public static string Describe(Type type)
    {
        if (Nullable.GetUnderlyingType(type) is { } inner) return Describe(inner) + "?";
        if (type.IsArray) return Describe(type.GetElementType()!) + "[]";
        if (!type.IsGenericType) return type.Name;
        string name = type.Name[..type.Name.IndexOf('`')];
        return $"{name}<{string.Join(", ", type.GetGenericArguments().Select(Describe))}>";
    }

    /// <summary>" (Name)" for a built-in tag, empty otherwise.</summary>
    public static string TagName(uint tag) =>
        tag < (uint)GridValueTag.FirstApplicationTag && Enum.IsDefined((GridValueTag)tag) ? $" ({(GridValueTag)tag})" : "";

    /// <summary>Refuses a length above <paramref name="max"/> before anything is written.</summary>
    public static void CheckLength(long length, long max, string what)
    {
        if (length > max) throw GridException.InvalidArgument($"{what} of {length} bytes exceeds the wire limit of {max} bytes.");
    }

    /// <summary>Refuses a string whose UTF-8 form is longer than <paramref name="maxBytes"/>.</summary>
    public static void CheckString(string value, int maxBytes, string what)
    {
        // UTF-8 takes at most 3 bytes per UTF-16 unit, so only long strings need counting.
        if ((long)value.Length * 3 <= maxBytes) return;
        int bytes = System.Text.Encoding.UTF8.GetByteCount(value);
        if (bytes > maxBytes) throw GridException.InvalidArgument($"{what} of {bytes} UTF-8 bytes exceeds the wire limit of {maxBytes} bytes.");
    }

    /// <summary>Refuses an element count above <see cref="GridValueCodec.MaxCollectionCount"/>.</summary>
    public static void CheckCount(int count, Type type)
    {
        if (count > GridValueCodec.MaxCollectionCount)
            throw GridException.InvalidArgument($"A {Describe(type)} of {count} elements exceeds the wire limit of {GridValueCodec.MaxCollectionCount} elements.");
    }
}

internal sealed class BoolValueCodec : ValueCodec<bool>
{
    public override void Write(ref GridWriter writer, bool value)
    {
        writer.WriteVarUInt32((uint)GridValueTag.Bool);
        writer.WriteBool(value);
    }

    public override bool ReadAfterTag(ref GridReader reader, uint tag, long at)
    {
        if (tag == (uint)GridValueTag.Null) return NullOrViolation(at);
        if (tag != (uint)GridValueTag.Bool) throw Mismatch(tag, (uint)GridValueTag.Bool, at);
        return reader.ReadBool();
    }
}

internal sealed class Int32ValueCodec : ValueCodec<int>
{
    public override void Write(ref GridWriter writer, int value)
    {
        writer.WriteVarUInt32((uint)GridValueTag.Int32);
        writer.WriteVarInt32(value);
    }

    public override int ReadAfterTag(ref GridReader reader, uint tag, long at)
    {
        if (tag == (uint)GridValueTag.Null) return NullOrViolation(at);
        if (tag != (uint)GridValueTag.Int32) throw Mismatch(tag, (uint)GridValueTag.Int32, at);
        return reader.ReadVarInt32();
    }
}

internal sealed class Int64ValueCodec : ValueCodec<long>
{
    public override void Write(ref GridWriter writer, long value)
    {
        writer.WriteVarUInt32((uint)GridValueTag.Int64);
        writer.WriteVarInt64(value);
    }

    public override long ReadAfterTag(ref GridReader reader, uint tag, long at)
    {
        if (tag == (uint)GridValueTag.Null) return NullOrViolation(at);
        if (tag != (uint)GridValueTag.Int64) throw Mismatch(tag, (uint)GridValueTag.Int64, at);
        return reader.ReadVarInt64();
    }
}

internal sealed class UInt64ValueCodec : ValueCodec<ulong>
{
    public override void Write(ref GridWriter writer, ulong value)
    {
        writer.WriteVarUInt32((uint)GridValueTag.UInt64);
        writer.WriteVarUInt64(value);
    }

    public override ulong ReadAfterTag(ref GridReader reader, uint tag, long at)
    {
        if (tag == (uint)GridValueTag.Null) return NullOrViolation(at);
        if (tag != (uint)GridValueTag.UInt64) throw Mismatch(tag, (uint)GridValueTag.UInt64, at);
        return reader.ReadVarUInt64();
    }
}

internal sealed class StringValueCodec : ValueCodec<string?>
{
    public override void Write(ref GridWriter writer, string? value)
    {
        if (value is null)
        {
            writer.WriteVarUInt32((uint)GridValueTag.Null);
            return;
        }
        ValueCodecs.CheckString(value, GridValueCodec.MaxStringBytes, "A string");
        writer.WriteVarUInt32((uint)GridValueTag.String);
        writer.WriteString(value);
    }

    public override string? ReadAfterTag(ref GridReader reader, uint tag, long at)
    {
        if (tag == (uint)GridValueTag.Null) return null;
        if (tag != (uint)GridValueTag.String) throw Mismatch(tag, (uint)GridValueTag.String, at);
        return reader.ReadString(GridValueCodec.MaxStringBytes);
    }
}

internal sealed class BytesValueCodec : ValueCodec<byte[]?>
{
    public override void Write(ref GridWriter writer, byte[]? value)
    {
        if (value is null)
        {
            writer.WriteVarUInt32((uint)GridValueTag.Null);
            return;
        }
        ValueCodecs.CheckLength(value.Length, GridValueCodec.MaxBytesLength, "A byte array");
        writer.WriteVarUInt32((uint)GridValueTag.Bytes);
        writer.WriteBytes(value);
    }

    public override byte[]? ReadAfterTag(ref GridReader reader, uint tag, long at)
    {
        if (tag == (uint)GridValueTag.Null) return null;
        if (tag != (uint)GridValueTag.Bytes) throw Mismatch(tag, (uint)GridValueTag.Bytes, at);
        return reader.ReadBytes(GridValueCodec.MaxBytesLength);
    }
}

/// <summary>
/// Any enum, by its underlying value: zigzag varint for signed underlying types, varuint for unsigned ones. Decoding
/// accepts only defined values (for <c>[Flags]</c> enums: combinations of defined bits).
/// </summary>
internal sealed class EnumValueCodec<TEnum> : ValueCodec<TEnum> where TEnum : struct, Enum
{
    private static readonly int Size = Unsafe.SizeOf<TEnum>();
    private readonly bool _signed;
    private readonly bool _flags;
    private readonly ulong _flagBits;
    private readonly HashSet<ulong> _defined = [];

    public EnumValueCodec()
    {
        Type underlying = Enum.GetUnderlyingType(typeof(TEnum));
        _signed = underlying == typeof(sbyte) || underlying == typeof(short) || underlying == typeof(int) || underlying == typeof(long);
        _flags = typeof(TEnum).IsDefined(typeof(FlagsAttribute), inherit: false);
        foreach (TEnum value in Enum.GetValues<TEnum>())
        {
            ulong raw = ToRaw(value);
            _defined.Add(raw);
            _flagBits |= raw;
        }
    }

    public override void Write(ref GridWriter writer, TEnum value)
    {
        writer.WriteVarUInt32((uint)GridValueTag.Enum);
        ulong raw = ToRaw(value);
        if (_signed) writer.WriteVarInt64((long)raw);
        else writer.WriteVarUInt64(raw);
    }

    public override TEnum ReadAfterTag(ref GridReader reader, uint tag, long at)
    {
        if (tag == (uint)GridValueTag.Null) return NullOrViolation(at);
        if (tag != (uint)GridValueTag.Enum) throw Mismatch(tag, (uint)GridValueTag.Enum, at);
        long start = reader.Position;
        ulong raw = _signed ? (ulong)reader.ReadVarInt64() : reader.ReadVarUInt64();
        bool valid = _flags
            ? FitsSize(raw) && (raw & ~_flagBits) == 0
            : _defined.Contains(raw);
        if (!valid)
        {
            string shown = _signed ? ((long)raw).ToString(System.Globalization.CultureInfo.InvariantCulture) : raw.ToString(System.Globalization.CultureInfo.InvariantCulture);
            throw GridWireFormat.ProtocolViolation($"{shown} at offset {start} is not a defined value of {typeof(TEnum).Name}.");
        }
        return FromRaw(raw);
    }

    private bool FitsSize(ulong raw)
    {
        if (Size == 8) return true;
        int bits = Size * 8;
        if (!_signed) return raw >> bits == 0;
        long value = (long)raw;
        long limit = 1L << (bits - 1);
        return value >= -limit && value < limit;
    }

    // Sign-extended for signed underlying types, so a raw value compares equal to the decoded varint.
    private ulong ToRaw(TEnum value) => Size switch
    {
        1 => _signed ? (ulong)(long)Unsafe.As<TEnum, sbyte>(ref value) : Unsafe.As<TEnum, byte>(ref value),
        2 => _signed ? (ulong)(long)Unsafe.As<TEnum, short>(ref value) : Unsafe.As<TEnum, ushort>(ref value),
        4 => _signed ? (ulong)(long)Unsafe.As<TEnum, int>(ref value) : Unsafe.As<TEnum, uint>(ref value),
        _ => Unsafe.As<TEnum, ulong>(ref value),
    };

    private static TEnum FromRaw(ulong raw)
    {
        switch (Size)
        {
            case 1:
            {
                byte b = (byte)raw;
                return Unsafe.As<byte, TEnum>(ref b);
            }
            case 2:
            {
                ushort s = (ushort)raw;
                return Unsafe.As<ushort, TEnum>(ref s);
            }
            case 4:
            {
                uint i = (uint)raw;
                return Unsafe.As<uint, TEnum>(ref i);
            }
            default:
                return Unsafe.As<ulong, TEnum>(ref raw);
        }
    }
}

/// <summary><c>U?</c>: <see cref="GridValueTag.Null"/> or a value of <typeparamref name="TValue"/>.</summary>
internal sealed class NullableValueCodec<TValue>(ValueCodec<TValue> inner) : ValueCodec<TValue?> where TValue : struct
{
    public override void Write(ref GridWriter writer, TValue? value)
    {
        if (value is { } present) inner.Write(ref writer, present);
        else writer.WriteVarUInt32((uint)GridValueTag.Null);
    }

    public override TValue? ReadAfterTag(ref GridReader reader, uint tag, long at) =>
        tag == (uint)GridValueTag.Null ? null : inner.ReadAfterTag(ref reader, tag, at);
}

/// <summary><c>T[]</c>: count, then every element as a value.</summary>
internal sealed class ArrayValueCodec<TElement>(ValueCodec<TElement> element) : ValueCodec<TElement[]?>
{
    public override void Write(ref GridWriter writer, TElement[]? value)
    {
        if (value is null)
        {
            writer.WriteVarUInt32((uint)GridValueTag.Null);
            return;
        }
        ValueCodecs.CheckCount(value.Length, typeof(TElement[]));
        writer.WriteVarUInt32((uint)GridValueTag.Array);
        writer.WriteCount(value.Length);
        foreach (var item in value) element.Write(ref writer, item);
    }

    public override TElement[]? ReadAfterTag(ref GridReader reader, uint tag, long at)
    {
        if (tag == (uint)GridValueTag.Null) return null;
        if (tag != (uint)GridValueTag.Array) throw Mismatch(tag, (uint)GridValueTag.Array, at);
        return ReadElements(ref reader, element);
    }

    /// <summary>The count and the elements; every element takes at least its tag byte, so the count is bounded by the input.</summary>
    internal static TElement[] ReadElements(ref GridReader reader, ValueCodec<TElement> element)
    {
        int count = reader.ReadCount(GridValueCodec.MaxCollectionCount, minElementBytes: 1);
        if (count == 0) return [];
        var items = new TElement[count];
        for (int i = 0; i < items.Length; i++) items[i] = element.Read(ref reader);
        return items;
    }
}

/// <summary><c>IReadOnlyList&lt;T&gt;</c>: the same wire form as <c>T[]</c>; decoded as a <c>T[]</c>.</summary>
internal sealed class ReadOnlyListValueCodec<TElement>(ValueCodec<TElement> element) : ValueCodec<IReadOnlyList<TElement>?>
{
    public override void Write(ref GridWriter writer, IReadOnlyList<TElement>? value)
    {
        if (value is null)
        {
            writer.WriteVarUInt32((uint)GridValueTag.Null);
            return;
        }
        int count = value.Count;
        ValueCodecs.CheckCount(count, typeof(IReadOnlyList<TElement>));
        writer.WriteVarUInt32((uint)GridValueTag.Array);
        writer.WriteCount(count);
        for (int i = 0; i < count; i++) element.Write(ref writer, value[i]);
    }

    public override IReadOnlyList<TElement>? ReadAfterTag(ref GridReader reader, uint tag, long at)
    {
        if (tag == (uint)GridValueTag.Null) return null;
        if (tag != (uint)GridValueTag.Array) throw Mismatch(tag, (uint)GridValueTag.Array, at);
        return ArrayValueCodec<TElement>.ReadElements(ref reader, element);
    }
}

/// <summary>A type with a <see cref="GridTypeCodec{T}"/>: its tag, then the codec's body.</summary>
internal sealed class RegisteredValueCodec<T>(GridTypeCodec<T> codec, GridValueCodec owner) : ValueCodec<T>
{
    public GridTypeCodec<T> Codec => codec;

    public override void Write(ref GridWriter writer, T value)
    {
        if (value is null)
        {
            writer.WriteVarUInt32((uint)GridValueTag.Null);
            return;
        }
        writer.WriteVarUInt32(codec.Tag);
        codec.WriteBody(ref writer, value, owner);
    }

    public override T ReadAfterTag(ref GridReader reader, uint tag, long at)
    {
        if (tag == (uint)GridValueTag.Null) return NullOrViolation(at);
        if (tag != codec.Tag) throw Mismatch(tag, codec.Tag, at);
        try
        {
            return codec.ReadBody(ref reader, owner);
        }
        catch (GridException ex) when (ex.Code == GridErrorCode.ProtocolViolation)
        {
            throw;
        }
        catch (Exception ex)
        {
            // A record's own validation (a constructor, a nested format) refused the bytes: still the sender's fault.
            throw new GridException(GridErrorCode.ProtocolViolation,
                $"Invalid {ValueCodecs.Describe(typeof(T))} at offset {at}: {ex.Message}", ex);
        }
    }
}
