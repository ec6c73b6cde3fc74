using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Remoting;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Tests.Remoting;

public enum SignedByteEnum : sbyte
{
    Low = -128,
    MinusOne = -1,
    Zero = 0,
    High = 127,
}

public enum WideEnum : ulong
{
    Small = 1,
    Huge = ulong.MaxValue,
}

[Flags]
public enum Permissions : ushort
{
    None = 0,
    Read = 1,
    Write = 2,
    Admin = 0x100,
}

public sealed record Point(int X, int Y);

public sealed class PointCodec() : GridTypeCodec<Point>(64)
{
    public override void WriteBody(ref GridWriter writer, Point value, GridValueCodec codec)
    {
        writer.WriteVarInt32(value.X);
        writer.WriteVarInt32(value.Y);
    }

    public override Point ReadBody(ref GridReader reader, GridValueCodec codec)
    {
        int x = reader.ReadVarInt32();
        int y = reader.ReadVarInt32();
        if (x < 0) throw new ArgumentOutOfRangeException(nameof(x), "points live in the first quadrant");
        return new Point(x, y);
    }
}

/// <summary>A list that claims a huge count without holding the elements, to test the writer's limit cheaply.</summary>
internal sealed class HugeList(int count) : IReadOnlyList<int>
{
    public int this[int index] => 0;

    public int Count => count;

    public IEnumerator<int> GetEnumerator() => Enumerable.Repeat(0, count).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

public sealed class GridValueCodecTests
{
    private static readonly GridValueCodec Codec = GridValueCodec.Default;

    internal static byte[] Encode<T>(T value, GridValueCodec? codec = null)
    {
        using var buffer = new PooledBufferWriter();
        var writer = new GridWriter(buffer);
        (codec ?? Codec).Write(ref writer, value);
        writer.Commit();
        return buffer.WrittenSpan.ToArray();
    }

    internal static T Decode<T>(byte[] bytes, GridValueCodec? codec = null)
    {
        var reader = new GridReader(bytes);
        T value = (codec ?? Codec).Read<T>(ref reader);
        reader.ExpectEnd();
        return value;
    }

    private static byte[] EncodeBoxed(Type type, object? value, GridValueCodec? codec)
    {
        using var buffer = new PooledBufferWriter();
        var writer = new GridWriter(buffer);
        (codec ?? Codec).WriteValue(ref writer, type, value);
        writer.Commit();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Encodes and decodes through the typed and the boxed (grain call) paths; both must agree, and re-encoding gives the same bytes.</summary>
    private static T RoundTrip<T>(T value, GridValueCodec? codec = null)
    {
        byte[] bytes = Encode(value, codec);
        T typed = Decode<T>(bytes, codec);
        Assert.Equal(bytes, Encode(typed, codec));

        Assert.Equal(bytes, EncodeBoxed(typeof(T), value, codec));
        var reader = new GridReader(bytes);
        object? boxed = (codec ?? Codec).ReadValue(ref reader, typeof(T));
        reader.ExpectEnd();
        Assert.Equal(bytes, EncodeBoxed(typeof(T), boxed, codec));
        return typed;
    }

    private static GridException Violation<T>(byte[] bytes, GridValueCodec? codec = null)
    {
        var error = Assert.Throws<GridException>(() => Decode<T>(bytes, codec));
        Assert.Equal(GridErrorCode.ProtocolViolation, error.Code);
        return error;
    }

    private static GridException Refused<T>(T value, GridValueCodec? codec = null)
    {
        var error = Assert.Throws<GridException>(() => Encode(value, codec));
        Assert.Equal(GridErrorCode.InvalidArgument, error.Code);
        return error;
    }

    // ------------------------------------------------------------------ primitives

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Bools(bool value) => Assert.Equal(value, RoundTrip(value));

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(-1)]
    [InlineData(int.MaxValue)]
    [InlineData(int.MinValue)]
    public void Ints(int value) => Assert.Equal(value, RoundTrip(value));

    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    [InlineData(300L)]
    [InlineData(long.MaxValue)]
    [InlineData(long.MinValue)]
    public void Longs(long value) => Assert.Equal(value, RoundTrip(value));

    [Theory]
    [InlineData(0UL)]
    [InlineData(127UL)]
    [InlineData(128UL)]
    [InlineData(ulong.MaxValue)]
    public void ULongs(ulong value) => Assert.Equal(value, RoundTrip(value));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("hé")]
    [InlineData("shard/i/3 🚀 ключ")]
    public void Strings(string? value) => Assert.Equal(value, RoundTrip(value));

    [Fact]
    public void ByteArrays()
    {
        Assert.Null(RoundTrip<byte[]?>(null));
        Assert.Empty(RoundTrip<byte[]>([])!);
        byte[] random = new byte[100_000];
        new Random(1).NextBytes(random);
        Assert.Equal(random, RoundTrip(random));
    }

    [Fact]
    public void KnownEncodings()
    {
        Assert.Equal([0x00], Encode<string?>(null));
        Assert.Equal([0x01, 0x01], Encode(true));
        Assert.Equal([0x02, 0x01], Encode(-1));
        Assert.Equal([0x03, 0xD8, 0x04], Encode(300L));
        Assert.Equal([0x04, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], Encode(ulong.MaxValue));
        Assert.Equal([0x05, 0x03, 0x68, 0xC3, 0xA9], Encode("hé"));
        Assert.Equal([0x06, 0x02, 0xAB, 0xCD], Encode(new byte[] { 0xAB, 0xCD }));
        Assert.Equal([0x07, 0x03], Encode(SyncMode.Full));
        Assert.Equal([0x08, 0x02, 0x02, 0x02, 0x02, 0x04], Encode(new[] { 1, 2 }));
        Assert.Equal([0x22, 0x06, 0x0E, 0xD0, 0x0F], Encode(new WriteResult(3, 7, 1000)));
        Assert.Equal([0x20, 0x01, 0x40, 0x01, 0x01, 0x80], Encode(new KeyRange([0x40], [0x80])));
        Assert.Equal([0x20, 0x00, 0x00], Encode(KeyRange.All));
        Assert.Equal([0x21, 0x01, 0x01, 0x6B, 0x01, 0x01, 0x76], Encode(BatchOperation.Put("k"u8.ToArray(), "v"u8.ToArray())));
    }

    // ------------------------------------------------------------------ enums

    [Theory]
    [InlineData(SyncMode.None)]
    [InlineData(SyncMode.Async)]
    [InlineData(SyncMode.Full)]
    public void SyncModes(SyncMode mode) => Assert.Equal(mode, RoundTrip(mode));

    [Fact]
    public void EnumsOfEveryUnderlyingType()
    {
        foreach (var value in Enum.GetValues<SignedByteEnum>()) Assert.Equal(value, RoundTrip(value));
        foreach (var value in Enum.GetValues<WideEnum>()) Assert.Equal(value, RoundTrip(value));
        foreach (var value in Enum.GetValues<GridErrorCode>()) Assert.Equal(value, RoundTrip(value));
        Assert.Equal(BatchOperationKind.Delete, RoundTrip(BatchOperationKind.Delete));
        Assert.Equal(Permissions.Read | Permissions.Admin, RoundTrip(Permissions.Read | Permissions.Admin));
        Assert.Equal(Permissions.None, RoundTrip(Permissions.None));
        Assert.Equal([0x07, 0x01], Encode(SignedByteEnum.MinusOne)); // zigzag of the underlying value
    }

    [Fact]
    public void UndefinedEnumValuesAreRefused()
    {
        Violation<SyncMode>([0x07, 0x00]);
        Violation<SyncMode>([0x07, 0x04]);
        Violation<SyncMode>([0x07, 0x80, 0x02]); // 256: does not even fit the byte
        Violation<SignedByteEnum>([0x07, 0x02]); // +1
        Violation<SignedByteEnum>([0x07, 0x81, 0x02]); // -129
        Violation<Permissions>([0x07, 0x04]); // bit 2 is not defined
        Violation<Permissions>([0x07, 0x80, 0x80, 0x04]); // beyond 16 bits
        var error = Violation<GridErrorCode>([0x07, 0x63]);
        Assert.Contains("not a defined value of GridErrorCode", error.Message);
    }

    // ------------------------------------------------------------------ nullable, arrays, lists

    [Fact]
    public void NullableValues()
    {
        Assert.Null(RoundTrip<long?>(null));
        Assert.Equal(long.MinValue, RoundTrip<long?>(long.MinValue));
        Assert.Null(RoundTrip<SyncMode?>(null));
        Assert.Equal(SyncMode.Async, RoundTrip<SyncMode?>(SyncMode.Async));
        Assert.Null(RoundTrip<BatchOperation?>(null));
        Assert.Equal([0x00], Encode<int?>(null));
        Assert.Equal(Encode(5), Encode<int?>(5)); // the same bytes as the value itself
    }

    [Fact]
    public void ArraysAndLists()
    {
        Assert.Null(RoundTrip<int[]?>(null));
        Assert.Empty(RoundTrip<int[]>([])!);
        Assert.Equal([int.MinValue, 0, int.MaxValue], RoundTrip<int[]>([int.MinValue, 0, int.MaxValue]));
        Assert.Equal(new[] { "a", null, "" }, RoundTrip<string?[]>(["a", null, ""]));
        Assert.Equal([[1], [], [2, 3]], RoundTrip<byte[][]>([[1], [], [2, 3]]));
        Assert.Equal([[1L], [2L, 3L]], RoundTrip<long[][]>([[1L], [2L, 3L]]));
        Assert.Equal([SyncMode.Full, SyncMode.None], RoundTrip<IReadOnlyList<SyncMode>>(new List<SyncMode> { SyncMode.Full, SyncMode.None }));
        Assert.Empty(RoundTrip<IReadOnlyList<long>>(new List<long>())!);
        Assert.Null(RoundTrip<IReadOnlyList<long>?>(null));
        Assert.Equal([1L, null], RoundTrip<long?[]>([1L, null]));

        // T[] and IReadOnlyList<T> are the same on the wire.
        Assert.Equal(Encode<int[]>([4, 5]), Encode<IReadOnlyList<int>>(new List<int> { 4, 5 }));
    }

    [Fact]
    public void NullForANonNullableValueTypeIsRefused()
    {
        var error = Violation<int>([0x00]);
        Assert.Contains("cannot be null", error.Message);
        Violation<SyncMode>([0x00]);
        Violation<BatchOperation>([0x00]);
        Violation<int[]>([0x08, 0x01, 0x00]); // an int[] element cannot be null
        Refused<object?>(null); // object has no encoding at all
    }

    // ------------------------------------------------------------------ contract records

    private static ShardProof MakeProof(bool exists, long shard = 5)
    {
        var tree = new SparseMerkleTree();
        for (int i = 0; i < 50; i++) tree.Upsert(PoseidonBytes.Hash([(byte)i, 1]), PoseidonBytes.Hash([(byte)i, 2]));
        byte[] key = exists ? [7, 1] : [200, 9];
        return new ShardProof(shard, new KeyRange([0x01], [0xF0]), 99, tree.Prove(PoseidonBytes.Hash(key)));
    }

    [Fact]
    public void KeyRanges()
    {
        Assert.Equal(KeyRange.All, RoundTrip(KeyRange.All));
        Assert.Equal(new KeyRange([], [0x10]), RoundTrip(new KeyRange([], [0x10])));
        Assert.Equal(new KeyRange([0x10, 0x00], null), RoundTrip(new KeyRange([0x10, 0x00], null)));
        Assert.Null(RoundTrip<KeyRange?>(null));
    }

    [Fact]
    public void KeyRangeWhoseEndIsNotAfterItsStartIsRefused()
    {
        var error = Violation<KeyRange>([0x20, 0x01, 0x40, 0x01, 0x01, 0x40]);
        Assert.Contains("not after its start", error.Message);
        Violation<KeyRange>([0x20, 0x01, 0x40, 0x01, 0x01, 0x30]);
    }

    [Fact]
    public void BatchOperations()
    {
        var put = RoundTrip(BatchOperation.Put([1, 2], [3]));
        Assert.Equal(BatchOperationKind.Put, put.Kind);
        Assert.Equal([1, 2], put.Key);
        Assert.Equal([3], put.Value!);
        var delete = RoundTrip(BatchOperation.Delete([9]));
        Assert.Equal(BatchOperationKind.Delete, delete.Kind);
        Assert.Null(delete.Value);
        var batch = RoundTrip<BatchOperation[]>([BatchOperation.Put([1], []), BatchOperation.Delete([2])]);
        Assert.Equal(2, batch.Length);
        Assert.Empty(batch[0].Value!);

        Violation<BatchOperation>([0x21, 0x03, 0x01, 0x6B, 0x00]); // kind 3
        Refused(new BatchOperation(BatchOperationKind.Put, null!, [1])); // a key is required
    }

    [Fact]
    public void WriteResultsAndProofs()
    {
        Assert.Equal(new WriteResult(1, 2, 3), RoundTrip(new WriteResult(1, 2, 3)));
        Assert.Equal(new WriteResult(long.MinValue, long.MaxValue, -1), RoundTrip(new WriteResult(long.MinValue, long.MaxValue, -1)));

        foreach (bool exists in new[] { true, false })
        {
            var proof = MakeProof(exists);
            var decoded = RoundTrip(proof);
            Assert.Equal(proof, decoded);
            Assert.True(decoded.Proof.Verify());
            Assert.Equal(proof.Root, decoded.Root);
        }
        var emptyTreeProof = new ShardProof(0, KeyRange.All, 0, new SparseMerkleTree().Prove(PoseidonBytes.Hash([1])));
        Assert.Equal(emptyTreeProof, RoundTrip(emptyTreeProof));

        var proven = new ProvenWriteResult(new WriteResult(5, 99, 123), MakeProof(true));
        Assert.Equal(proven, RoundTrip(proven));
    }

    [Fact]
    public void ReadResults()
    {
        var withProof = new ReadResult([1, 2, 3], 99, 12345, "eu-west", MakeProof(true));
        var decoded = RoundTrip(withProof);
        Assert.Equal(withProof.Value, decoded.Value);
        Assert.Equal((withProof.Version, withProof.TimestampMicros, withProof.Region, withProof.Proof), (decoded.Version, decoded.TimestampMicros, decoded.Region, decoded.Proof));

        var absent = RoundTrip(new ReadResult(null, 0, 0, "", null));
        Assert.Null(absent.Value);
        Assert.Null(absent.Proof);
        Assert.Equal("", absent.Region);

        var empty = RoundTrip(new ReadResult([], 1, 2, "r", null));
        Assert.Empty(empty.Value!);
    }

    [Fact]
    public void KeyValuesAndScanPages()
    {
        var kv = RoundTrip(new KeyValue([1], [2, 3], -5));
        Assert.Equal([1], kv.Key);
        Assert.Equal([2, 3], kv.Value);
        Assert.Equal(-5L, kv.Version);

        var page = new ScanPage([new KeyValue([1], [10], 1), new KeyValue([2], [], 2)], [3]);
        var decoded = RoundTrip(page);
        Assert.Equal(2, decoded.Items.Count);
        Assert.Equal([2], decoded.Items[1].Key);
        Assert.Empty(decoded.Items[1].Value);
        Assert.Equal([3], decoded.NextKey!);

        var last = RoundTrip(new ScanPage([], null));
        Assert.Empty(last.Items);
        Assert.Null(last.NextKey);
    }

    [Fact]
    public void StatusesMapsAndHints()
    {
        var status = new ShardStatus(4, new KeyRange([0x40], [0x80]), 10, 9, "123456789", 1000, 3, "eu-west/silo-1");
        Assert.Equal(status, RoundTrip(status));

        var entries = new[]
        {
            new ShardMapEntry(1, new KeyRange([], [0x80]), "10.0.0.1:7400", 1),
            new ShardMapEntry(2, new KeyRange([0x80], null), "10.0.0.2:7400", 2),
        };
        var map = RoundTrip(new ShardMap(77, entries));
        Assert.Equal(77, map.Generation);
        Assert.Equal(entries, map.Shards);
        Assert.Equal(2, map.Locate([0x90]).ShardId);
        Assert.Empty(RoundTrip(new ShardMap(0, [])).Shards);

        var hint = new OwnerHint(9, "[::1]:7400", long.MaxValue);
        Assert.Equal(hint, RoundTrip(hint));
        Assert.Null(RoundTrip<OwnerHint?>(null));
    }

    [Fact]
    public void RequiredRecordFieldsMustBePresent()
    {
        // ProvenWriteResult with a Null where its WriteResult belongs.
        var error = Violation<ProvenWriteResult>([0x23, 0x00]);
        Assert.Contains("ProvenWriteResult.Write", error.Message);
        // ShardMap whose shard list is Null.
        Violation<ShardMap>([0x29, 0x02, 0x00]);
        Refused(new ShardMap(1, null!));
        Refused(new ShardProof(1, null!, 1, MakeProof(true).Proof));
    }

    [Fact]
    public void AMalformedMerkleProofIsAProtocolViolation()
    {
        var proof = MakeProof(true);
        byte[] good = Encode(proof);
        int proofStart = good.Length - proof.Proof.Encode().Length; // the compact proof ends the body

        byte[] unknownVersion = (byte[])good.Clone();
        unknownVersion[proofStart] = 99;
        Assert.Contains("Merkle proof", Violation<ShardProof>(unknownVersion).Message);

        byte[] notAFieldElement = (byte[])good.Clone();
        notAFieldElement.AsSpan(good.Length - 32).Fill(0xFF); // the last field element, big-endian: not below p
        Assert.Contains("Merkle proof", Violation<ShardProof>(notAFieldElement).Message);

        Violation<ShardProof>(good[..^1]);
        int lengthStart = proofStart - VarUInt((uint)(good.Length - proofStart)).Length;
        byte[] tooLong = [.. good[..lengthStart], .. VarUInt((uint)ContractCodecs.MaxSmtProofBytes + 1)];
        Assert.Contains("exceeds the limit", Violation<ShardProof>(tooLong).Message);
    }

    // ------------------------------------------------------------------ limits

    [Fact]
    public void ByteArraysUpToTheLimitRoundTripAndBeyondItAreRefused()
    {
        byte[] max = new byte[GridValueCodec.MaxBytesLength];
        max[^1] = 7;
        byte[]? decoded = Decode<byte[]>(Encode(max));
        Assert.Equal(max.Length, decoded!.Length);
        Assert.Equal(7, decoded[^1]);

        Refused(new byte[GridValueCodec.MaxBytesLength + 1]);
        // A length above the limit is refused before anything is allocated or read.
        byte[] lie = [0x06, .. VarUInt((uint)GridValueCodec.MaxBytesLength + 1)];
        Assert.Contains("exceeds the limit", Violation<byte[]>(lie).Message);
    }

    [Fact]
    public void StringsUpToTheLimitRoundTripAndBeyondItAreRefused()
    {
        string max = new('x', GridValueCodec.MaxStringBytes);
        Assert.Equal(max, Decode<string>(Encode(max)));
        Refused(max + "y");
        Refused(new string('é', GridValueCodec.MaxStringBytes / 2 + 1)); // counted in UTF-8 bytes, not characters
        Violation<string>([0x05, .. VarUInt((uint)GridValueCodec.MaxStringBytes + 1)]);
    }

    [Fact]
    public void KeysUpToTheLimitRoundTripAndBeyondItAreRefused()
    {
        byte[] key = new byte[GridValueCodec.MaxKeyLength];
        Array.Fill(key, (byte)0x55);
        Assert.Equal(key.Length, RoundTrip(new KeyRange(key, null)).Start.Length);
        Assert.Equal(key, RoundTrip(new KeyValue(key, [], 1)).Key);

        byte[] tooLong = new byte[GridValueCodec.MaxKeyLength + 1];
        Refused(new KeyRange(tooLong, null));
        Refused(BatchOperation.Delete(tooLong));
        Violation<KeyValue>([0x25, .. VarUInt((uint)GridValueCodec.MaxKeyLength + 1)]);
    }

    [Fact]
    public void CollectionsBeyondTheLimitAreRefused()
    {
        Refused<IReadOnlyList<int>>(new HugeList(GridValueCodec.MaxCollectionCount + 1));
        Violation<int[]>([0x08, .. VarUInt((uint)GridValueCodec.MaxCollectionCount + 1)]);
        // A count the remaining bytes cannot hold (each element takes at least one byte) is refused before allocating.
        Violation<long[]>([0x08, .. VarUInt(1_000_000), 0x03, 0x00]);
    }

    // ------------------------------------------------------------------ garbage

    [Fact]
    public void AnotherTagThanTheDeclaredTypesIsRefused()
    {
        var error = Violation<string>(Encode(42L));
        Assert.Contains("Expected a String (tag 5)", error.Message);
        Assert.Contains("found tag 3 (Int64)", error.Message);
        Violation<long>(Encode(42));
        Violation<int[]>(Encode(new byte[] { 1 }));
        Violation<byte[]>(Encode(new[] { 1 }));
        Violation<WriteResult>(Encode(new KeyValue([1], [1], 1)));
        Violation<KeyRange>([99, 0x00]);
        Violation<long>([0x83, 0x00, 0x00]); // a non-minimal tag varint
    }

    [Fact]
    public void EveryTruncationIsAProtocolViolation()
    {
        byte[][] samples =
        [
            Encode(new ProvenWriteResult(new WriteResult(5, 99, 123), MakeProof(true))),
            Encode(new ReadResult([1, 2, 3], 99, 12345, "eu-west", MakeProof(false))),
            Encode(new ScanPage([new KeyValue([1], [10], 1)], [3])),
            Encode(new ShardMap(1, [new ShardMapEntry(1, KeyRange.All, "a:1", 1)])),
        ];
        foreach (byte[] sample in samples)
        {
            for (int length = 0; length < sample.Length; length++)
            {
                byte[] prefix = sample[..length];
                var error = Assert.Throws<GridException>(() =>
                {
                    switch (sample[0])
                    {
                        case (byte)GridValueTag.ProvenWriteResult: Decode<ProvenWriteResult>(prefix); break;
                        case (byte)GridValueTag.ReadResult: Decode<ReadResult>(prefix); break;
                        case (byte)GridValueTag.ScanPage: Decode<ScanPage>(prefix); break;
                        default: Decode<ShardMap>(prefix); break;
                    }
                });
                Assert.Equal(GridErrorCode.ProtocolViolation, error.Code);
            }
        }
    }

    [Fact]
    public void RandomAndMutatedInputOnlyEverFailsWithProtocolViolation()
    {
        var random = new Random(20240611);
        Type[] types =
        [
            typeof(bool), typeof(int), typeof(long), typeof(ulong), typeof(string), typeof(byte[]), typeof(SyncMode),
            typeof(long?), typeof(int[]), typeof(IReadOnlyList<KeyValue>), typeof(KeyRange), typeof(BatchOperation[]),
            typeof(WriteResult), typeof(ProvenWriteResult), typeof(ReadResult), typeof(ScanPage), typeof(ShardProof),
            typeof(ShardStatus), typeof(ShardMap), typeof(OwnerHint), typeof(Permissions),
        ];
        byte[][] seeds =
        [
            Encode(new ProvenWriteResult(new WriteResult(5, 99, 123), MakeProof(true))),
            Encode(new ReadResult([1, 2, 3], 99, 12345, "eu-west", MakeProof(false))),
            Encode(new ScanPage([new KeyValue([1], [10], 1), new KeyValue([2], [20], 2)], [3])),
            Encode(new ShardStatus(4, new KeyRange([0x40], [0x80]), 10, 9, "1", 1000, 3, "s")),
            Encode<BatchOperation[]>([BatchOperation.Put([1], [2]), BatchOperation.Delete([3])]),
        ];
        int decoded = 0;
        for (int round = 0; round < 4000; round++)
        {
            byte[] input;
            if (round % 2 == 0)
            {
                input = new byte[random.Next(0, 64)];
                random.NextBytes(input);
            }
            else
            {
                input = (byte[])seeds[random.Next(seeds.Length)].Clone();
                for (int flips = random.Next(1, 4); flips > 0; flips--) input[random.Next(input.Length)] = (byte)random.Next(256);
            }
            foreach (Type type in types)
            {
                try
                {
                    var reader = new GridReader(input);
                    Codec.ReadValue(ref reader, type);
                    reader.ExpectEnd();
                    decoded++;
                }
                catch (GridException ex) when (ex.Code == GridErrorCode.ProtocolViolation)
                {
                    // expected for nearly every input
                }
            }
        }
        Assert.True(decoded > 0, "some inputs happen to be valid values");
    }

    // ------------------------------------------------------------------ registration

    [Fact]
    public void ARegisteredRecordTravelsLikeABuiltInOne()
    {
        var codec = new GridValueCodec();
        Assert.False(codec.IsSupported(typeof(Point)));
        Assert.False(codec.IsSupported(typeof(Point[])));
        codec.Register(new PointCodec());

        Assert.True(codec.IsSupported(typeof(Point[])));
        Assert.Equal(new Point(1, -2), RoundTrip(new Point(1, -2), codec));
        Assert.Equal([0x40, 0x02, 0x03], Encode(new Point(1, -2), codec));
        Assert.Null(RoundTrip<Point?>(null, codec));
        Assert.Equal(new[] { new Point(3, 4), null }, RoundTrip<Point?[]>([new Point(3, 4), null], codec));
        Assert.Equal([new Point(5, 6)], RoundTrip<IReadOnlyList<Point>>([new Point(5, 6)], codec));

        // Its own validation failing is the sender's fault: a protocol violation, not a crash.
        var error = Violation<Point>([0x40, 0x01, 0x00], codec);
        Assert.Contains("first quadrant", error.Message);
        // The default codec knows nothing of it.
        Assert.False(GridValueCodec.Default.IsSupported(typeof(Point)));
        Assert.Equal(GridErrorCode.InvalidArgument, Assert.Throws<GridException>(() => Encode(new Point(1, 1))).Code);
    }

    private sealed class TagCodec<T>(uint tag) : GridTypeCodec<T>(tag)
    {
        public override void WriteBody(ref GridWriter writer, T value, GridValueCodec codec) { }

        public override T ReadBody(ref GridReader reader, GridValueCodec codec) => default!;
    }

    [Fact]
    public void RegistrationRefusesReservedOrTakenTagsAndKnownTypes()
    {
        var codec = new GridValueCodec();
        codec.Register(new TagCodec<Point>(100));

        Assert.Contains("reserved", Assert.Throws<GridException>(() => codec.Register(new TagCodec<Guid>(63))).Message);
        Assert.Contains("already used by Point", Assert.Throws<GridException>(() => codec.Register(new TagCodec<Guid>(100))).Message);
        Assert.Contains("already has a codec", Assert.Throws<GridException>(() => codec.Register(new TagCodec<Point>(101))).Message);
        Assert.Contains("already has a codec", Assert.Throws<GridException>(() => codec.Register(new TagCodec<string>(102))).Message);
        Assert.Throws<GridException>(() => codec.Register(new TagCodec<SyncMode>(103)));
        Assert.Throws<GridException>(() => codec.Register(new TagCodec<int[]>(104)));
        Assert.Throws<GridException>(() => codec.Register(new TagCodec<IReadOnlyList<int>>(105)));
        codec.Register(new TagCodec<Guid>(106));
        Assert.True(codec.IsSupported(typeof(Guid?)));
    }

    [Fact]
    public void AnUnsupportedTypeIsNamedWhenEncoding()
    {
        var error = Refused(Guid.NewGuid());
        Assert.Contains("Guid has no wire encoding", error.Message);
        Assert.False(Codec.IsSupported(typeof(List<int>)));
        Assert.False(Codec.IsSupported(typeof(IEnumerable<int>)));
        Assert.False(Codec.IsSupported(typeof(object)));
    }

    // ------------------------------------------------------------------ grain call bodies

    [Fact]
    public void TheDocumentedRequestBodyOfAPut()
    {
        var put = GrainInterfaceDescription.Get(typeof(IShardGrain)).Methods.Single(m => m.Id == 1);
        var call = new GrainCall(GrainId.Create("shard", 3), "shard", 1, ["k"u8.ToArray(), "v"u8.ToArray(), SyncMode.Full, null]);
        using var buffer = new PooledBufferWriter();
        var writer = new GridWriter(buffer);
        GrainCallBody.Write(ref writer, call, Codec.GetMethodCodec(put));
        writer.Commit();

        Assert.Equal(
            Convert.FromHexString("01" + "057368617264" + "01" + "06" + "057368617264" + "0100" + "03" + "06016B" + "060176" + "0703" + "00"),
            buffer.WrittenSpan.ToArray());
    }

    [Fact]
    public void AResponseMustHoldExactlyTheResult()
    {
        var methods = GrainInterfaceDescription.Get(typeof(IRemoteTestGrain)).Methods;
        var add = Codec.GetMethodCodec(methods.Single(m => m.Id == 1));
        var record = Codec.GetMethodCodec(methods.Single(m => m.Id == 10));

        Assert.Equal(5L, add.ReadResult(Encode(5L)));
        Assert.Equal(GridErrorCode.ProtocolViolation, Assert.Throws<GridException>(() => add.ReadResult([.. Encode(5L), 0])).Code);
        Assert.Equal(GridErrorCode.ProtocolViolation, Assert.Throws<GridException>(() => add.ReadResult([])).Code);
        Assert.Null(record.ReadResult([]));
        Assert.Equal(GridErrorCode.ProtocolViolation, Assert.Throws<GridException>(() => record.ReadResult([0])).Code);
    }

    [Fact]
    public void AnInterfaceWithAnUnsupportedTypeCannotBeCalledRemotely()
    {
        var method = GrainInterfaceDescription.Get(typeof(IUnremotableGrain)).Methods.Single(m => m.Id == 2);
        var error = Assert.Throws<GridException>(() => Codec.GetMethodCodec(method));
        Assert.Equal(GridErrorCode.InvalidArgument, error.Code);
        Assert.Contains("NotOnTheWire", error.Message);
        Assert.Contains("the result (Guid)", error.Message);
    }

    internal static byte[] VarUInt(uint value)
    {
        var bytes = new List<byte>();
        while (value >= 0x80)
        {
            bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }
        bytes.Add((byte)value);
        return [.. bytes];
    }
}
