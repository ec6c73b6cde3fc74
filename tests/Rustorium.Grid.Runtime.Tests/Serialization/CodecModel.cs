using System.Buffers;
using FsCheck;
using FsCheck.Fluent;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Tests.Serialization;

/// <summary>
/// One value of every kind the codec knows, with how to write it and how to read it back and check it. A message
/// is a list of fields; property tests generate messages and check round trips and truncations.
/// </summary>
internal abstract record Field
{
    public const int MaxBytes = 1 << 20;
    public const int MaxCount = 1000;

    public abstract void Write(ref GridWriter w);

    public abstract void ReadAndCheck(ref GridReader r);

    public sealed record U8(byte V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteByte(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadByte());
    }

    public sealed record U16(ushort V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteUInt16(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadUInt16());
    }

    public sealed record U32(uint V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteUInt32(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadUInt32());
    }

    public sealed record U64(ulong V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteUInt64(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadUInt64());
    }

    public sealed record I16(short V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteInt16(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadInt16());
    }

    public sealed record I32(int V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteInt32(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadInt32());
    }

    public sealed record I64(long V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteInt64(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadInt64());
    }

    public sealed record VarU32(uint V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteVarUInt32(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadVarUInt32());
    }

    public sealed record VarU64(ulong V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteVarUInt64(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadVarUInt64());
    }

    public sealed record VarI32(int V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteVarInt32(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadVarInt32());
    }

    public sealed record VarI64(long V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteVarInt64(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadVarInt64());
    }

    public sealed record Bool(bool V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteBool(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadBool());
    }

    public sealed record Bytes(byte[] V, bool AsSpan) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteBytes(V);
        public override void ReadAndCheck(ref GridReader r)
        {
            if (AsSpan) Assert.True(r.ReadBytesSpan(MaxBytes).SequenceEqual(V));
            else Assert.Equal(V, r.ReadBytes(MaxBytes));
        }
    }

    public sealed record Str(string V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteString(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadString(MaxBytes));
    }

    public sealed record FrValue(Fr V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteFr(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadFr());
    }

    public sealed record OptBytes(byte[]? V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteOptionalBytes(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadOptionalBytes(MaxBytes));
    }

    public sealed record OptStr(string? V) : Field
    {
        public override void Write(ref GridWriter w) => w.WriteOptionalString(V);
        public override void ReadAndCheck(ref GridReader r) => Assert.Equal(V, r.ReadOptionalString(MaxBytes));
    }

    public sealed record Array(long[] V) : Field
    {
        public override void Write(ref GridWriter w)
        {
            w.WriteCount(V.Length);
            foreach (var x in V) w.WriteVarInt64(x);
        }

        public override void ReadAndCheck(ref GridReader r)
        {
            int n = r.ReadCount(MaxCount);
            Assert.Equal(V.Length, n);
            for (int i = 0; i < n; i++) Assert.Equal(V[i], r.ReadVarInt64());
        }
    }

    public static byte[] Encode(IReadOnlyList<Field> fields)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new GridWriter(buffer);
        foreach (var f in fields) f.Write(ref w);
        w.Commit();
        Assert.Equal(buffer.WrittenCount, w.BytesWritten);
        return buffer.WrittenSpan.ToArray();
    }

    public static void DecodeAndCheck(ref GridReader r, IReadOnlyList<Field> fields)
    {
        foreach (var f in fields) f.ReadAndCheck(ref r);
        r.ExpectEnd();
    }
}

/// <summary>FsCheck generators for <see cref="Field"/> messages.</summary>
internal static class CodecGen
{
    private static readonly Gen<int> Word = Gen.Choose(0, 0xFFFF);

    /// <summary>64 random bits, then masked to a random width, so every varint length is common.</summary>
    public static readonly Gen<ulong> U64 =
        Gen.Zip(Gen.Zip(Word, Word), Gen.Zip(Gen.Zip(Word, Word), Gen.Choose(0, 64)))
            .Select(t =>
            {
                ulong v = (ulong)(uint)t.Item1.Item1 | (ulong)(uint)t.Item1.Item2 << 16 | (ulong)(uint)t.Item2.Item1.Item1 << 32 | (ulong)(uint)t.Item2.Item1.Item2 << 48;
                int bits = t.Item2.Item2;
                return bits == 64 ? v : v & ((1UL << bits) - 1);
            });

    public static readonly Gen<byte[]> ByteArrays =
        Gen.Frequency(
            (4, Gen.Choose(0, 40)),
            (1, Gen.Choose(100, 300)),
            (1, Gen.Choose(16_000, 20_000)))
        .SelectMany(n => Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b), n));

    private static readonly Gen<int> CodePoint = Gen.Frequency(
        (6, Gen.Choose(0x00, 0x7F)),
        (2, Gen.Choose(0x80, 0x7FF)),
        (2, Gen.Choose(0x800, 0xD7FF)),
        (1, Gen.Choose(0xE000, 0xFFFF)),
        (1, Gen.Choose(0x10000, 0x10FFFF)));

    public static readonly Gen<string> Strings =
        Gen.Frequency((5, Gen.Choose(0, 30)), (1, Gen.Choose(200, 400)))
            .SelectMany(n => Gen.ArrayOf(CodePoint, n))
            .Select(cps => string.Concat(cps.Select(char.ConvertFromUtf32)));

    public static readonly Gen<Fr> FieldElements =
        Gen.ArrayOf(Gen.Choose(0, 255).Select(b => (byte)b), 32).Select(b =>
        {
            b[31] &= 0x1F; // < 2^253 < p
            return Fr.FromBytesLittleEndian(b);
        });

    public static readonly Gen<Field> Field = Gen.OneOf(
        U64.Select(v => (Field)new Field.U8((byte)v)),
        U64.Select(v => (Field)new Field.U16((ushort)v)),
        U64.Select(v => (Field)new Field.U32((uint)v)),
        U64.Select(v => (Field)new Field.U64(v)),
        U64.Select(v => (Field)new Field.I16((short)v)),
        U64.Select(v => (Field)new Field.I32((int)v)),
        U64.Select(v => (Field)new Field.I64((long)v)),
        U64.Select(v => (Field)new Field.VarU32((uint)v)),
        U64.Select(v => (Field)new Field.VarU64(v)),
        U64.Select(v => (Field)new Field.VarI32((int)v)),
        U64.Select(v => (Field)new Field.VarI64((long)v)),
        Gen.Elements(true, false).Select(v => (Field)new Field.Bool(v)),
        Gen.Zip(ByteArrays, Gen.Elements(true, false)).Select(t => (Field)new Field.Bytes(t.Item1, t.Item2)),
        Strings.Select(s => (Field)new Field.Str(s)),
        FieldElements.Select(f => (Field)new Field.FrValue(f)),
        Gen.Frequency((1, Gen.Constant<byte[]?>(null)), (3, ByteArrays.Select(b => (byte[]?)b))).Select(b => (Field)new Field.OptBytes(b)),
        Gen.Frequency((1, Gen.Constant<string?>(null)), (3, Strings.Select(s => (string?)s))).Select(s => (Field)new Field.OptStr(s)),
        Gen.Choose(0, 20).SelectMany(n => Gen.ArrayOf(U64.Select(v => (long)v), n)).Select(a => (Field)new Field.Array(a)));

    public static Gen<Field[]> Messages(int maxFields) => Gen.Choose(1, maxFields).SelectMany(n => Gen.ArrayOf(Field, n));

    public static Config Runs(int n) => Config.QuickThrowOnFailure.WithMaxTest(n);
}
