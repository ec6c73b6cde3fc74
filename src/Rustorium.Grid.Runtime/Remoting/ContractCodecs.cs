using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Remoting;

/// <summary>
/// The built-in codecs of the grid's contract records (docs/protocol.md, "Contract records"). Each body is its fields in
/// declaration order: integers as zigzag varints, keys and values as <c>bytes</c>, nullable ones as
/// <c>optional&lt;…&gt;</c>, nested records and lists as whole values (tag included).
/// </summary>
internal static class ContractCodecs
{
    public static IReadOnlyList<IBuiltIn> All { get; } =
    [
        new KeyRangeCodec(),
        new BatchOperationCodec(),
        new WriteResultCodec(),
        new ProvenWriteResultCodec(),
        new ReadResultCodec(),
        new KeyValueCodec(),
        new ScanPageCodec(),
        new ShardProofCodec(),
        new ShardStatusCodec(),
        new ShardMapCodec(),
        new ShardMapEntryCodec(),
        new OwnerHintCodec(),
        new ShardMoveResultCodec(),
    ];

    /// <summary>Longest compact <see cref="SmtProof"/> encoding: full depth, every sibling non-zero, old leaf included.</summary>
    public const int MaxSmtProofBytes = 3 + (SparseMerkleTree.MaxDepth + 7) / 8 + 32 * (SparseMerkleTree.MaxDepth + 4);

    internal interface IBuiltIn
    {
        void AddTo(GridValueCodec codec);
    }

    private abstract class BuiltIn<T>(GridValueTag tag) : GridTypeCodec<T>((uint)tag), IBuiltIn
    {
        public void AddTo(GridValueCodec codec) => codec.AddBuiltIn(this);
    }

    private static void WriteKey(ref GridWriter writer, byte[]? key, string field)
    {
        if (key is null) throw GridException.InvalidArgument($"{field} is null; it is required.");
        ValueCodecs.CheckLength(key.Length, GridValueCodec.MaxKeyLength, field);
        writer.WriteBytes(key);
    }

    private static void WriteOptionalKey(ref GridWriter writer, byte[]? key, string field)
    {
        writer.WritePresence(key is not null);
        if (key is not null) WriteKey(ref writer, key, field);
    }

    private static void WriteValueBytes(ref GridWriter writer, byte[]? value, string field)
    {
        if (value is null) throw GridException.InvalidArgument($"{field} is null; it is required.");
        ValueCodecs.CheckLength(value.Length, GridValueCodec.MaxBytesLength, field);
        writer.WriteBytes(value);
    }

    private static void WriteOptionalValueBytes(ref GridWriter writer, byte[]? value, string field)
    {
        writer.WritePresence(value is not null);
        if (value is not null) WriteValueBytes(ref writer, value, field);
    }

    private static void WriteText(ref GridWriter writer, string? text, string field)
    {
        if (text is null) throw GridException.InvalidArgument($"{field} is null; it is required.");
        ValueCodecs.CheckString(text, GridValueCodec.MaxStringBytes, field);
        writer.WriteString(text);
    }

    private static void Require(object? value, string field)
    {
        if (value is null) throw GridException.InvalidArgument($"{field} is null; it is required.");
    }

    private sealed class KeyRangeCodec() : BuiltIn<KeyRange>(GridValueTag.KeyRange)
    {
        public override void WriteBody(ref GridWriter writer, KeyRange value, GridValueCodec codec)
        {
            ValueCodecs.CheckLength(value.Start.Length, GridValueCodec.MaxKeyLength, "KeyRange.Start");
            writer.WriteBytes(value.Start);
            writer.WritePresence(!value.IsUnbounded);
            if (!value.IsUnbounded)
            {
                ValueCodecs.CheckLength(value.End.Length, GridValueCodec.MaxKeyLength, "KeyRange.End");
                writer.WriteBytes(value.End);
            }
        }

        public override KeyRange ReadBody(ref GridReader reader, GridValueCodec codec)
        {
            ReadOnlySpan<byte> start = reader.ReadBytesSpan(GridValueCodec.MaxKeyLength);
            byte[]? end = reader.ReadOptionalBytes(GridValueCodec.MaxKeyLength);
            if (end is not null && KeyRange.Compare(end, start) <= 0)
                throw GridWireFormat.ProtocolViolation($"Key range end {Convert.ToHexStringLower(end)} is not after its start {Convert.ToHexStringLower(start)}.");
            return new KeyRange(start, end);
        }
    }

    private sealed class BatchOperationCodec() : BuiltIn<BatchOperation>(GridValueTag.BatchOperation)
    {
        public override void WriteBody(ref GridWriter writer, BatchOperation value, GridValueCodec codec)
        {
            if (!Enum.IsDefined(value.Kind)) throw GridException.InvalidArgument($"BatchOperation.Kind {(byte)value.Kind} is not a defined operation.");
            writer.WriteByte((byte)value.Kind);
            WriteKey(ref writer, value.Key, "BatchOperation.Key");
            WriteOptionalValueBytes(ref writer, value.Value, "BatchOperation.Value");
        }

        public override BatchOperation ReadBody(ref GridReader reader, GridValueCodec codec)
        {
            long at = reader.Position;
            var kind = (BatchOperationKind)reader.ReadByte();
            if (!Enum.IsDefined(kind)) throw GridWireFormat.ProtocolViolation($"Batch operation kind {(byte)kind} at offset {at} is not defined (1 put, 2 delete).");
            byte[] key = reader.ReadBytes(GridValueCodec.MaxKeyLength);
            byte[]? value = reader.ReadOptionalBytes(GridValueCodec.MaxBytesLength);
            return new BatchOperation(kind, key, value);
        }
    }

    private sealed class WriteResultCodec() : BuiltIn<WriteResult>(GridValueTag.WriteResult)
    {
        public override void WriteBody(ref GridWriter writer, WriteResult value, GridValueCodec codec)
        {
            writer.WriteVarInt64(value.ShardId);
            writer.WriteVarInt64(value.Version);
            writer.WriteVarInt64(value.TimestampMicros);
        }

        public override WriteResult ReadBody(ref GridReader reader, GridValueCodec codec) =>
            new(reader.ReadVarInt64(), reader.ReadVarInt64(), reader.ReadVarInt64());
    }

    private sealed class ProvenWriteResultCodec() : BuiltIn<ProvenWriteResult>(GridValueTag.ProvenWriteResult)
    {
        public override void WriteBody(ref GridWriter writer, ProvenWriteResult value, GridValueCodec codec)
        {
            Require(value.Write, "ProvenWriteResult.Write");
            Require(value.Proof, "ProvenWriteResult.Proof");
            codec.Write(ref writer, value.Write);
            codec.Write(ref writer, value.Proof);
        }

        public override ProvenWriteResult ReadBody(ref GridReader reader, GridValueCodec codec) =>
            new(codec.ReadRequired<WriteResult>(ref reader, "ProvenWriteResult.Write"),
                codec.ReadRequired<ShardProof>(ref reader, "ProvenWriteResult.Proof"));
    }

    private sealed class ReadResultCodec() : BuiltIn<ReadResult>(GridValueTag.ReadResult)
    {
        public override void WriteBody(ref GridWriter writer, ReadResult value, GridValueCodec codec)
        {
            WriteOptionalValueBytes(ref writer, value.Value, "ReadResult.Value");
            writer.WriteVarInt64(value.Version);
            writer.WriteVarInt64(value.TimestampMicros);
            WriteText(ref writer, value.Region, "ReadResult.Region");
            codec.Write(ref writer, value.Proof);
        }

        public override ReadResult ReadBody(ref GridReader reader, GridValueCodec codec)
        {
            byte[]? value = reader.ReadOptionalBytes(GridValueCodec.MaxBytesLength);
            long version = reader.ReadVarInt64();
            long timestamp = reader.ReadVarInt64();
            string region = reader.ReadString(GridValueCodec.MaxStringBytes);
            ShardProof? proof = codec.Read<ShardProof?>(ref reader);
            return new ReadResult(value, version, timestamp, region, proof);
        }
    }

    private sealed class KeyValueCodec() : BuiltIn<KeyValue>(GridValueTag.KeyValue)
    {
        public override void WriteBody(ref GridWriter writer, KeyValue value, GridValueCodec codec)
        {
            WriteKey(ref writer, value.Key, "KeyValue.Key");
            WriteValueBytes(ref writer, value.Value, "KeyValue.Value");
            writer.WriteVarInt64(value.Version);
        }

        public override KeyValue ReadBody(ref GridReader reader, GridValueCodec codec) =>
            new(reader.ReadBytes(GridValueCodec.MaxKeyLength), reader.ReadBytes(GridValueCodec.MaxBytesLength), reader.ReadVarInt64());
    }

    private sealed class ScanPageCodec() : BuiltIn<ScanPage>(GridValueTag.ScanPage)
    {
        public override void WriteBody(ref GridWriter writer, ScanPage value, GridValueCodec codec)
        {
            Require(value.Items, "ScanPage.Items");
            codec.Write(ref writer, value.Items);
            WriteOptionalKey(ref writer, value.NextKey, "ScanPage.NextKey");
        }

        public override ScanPage ReadBody(ref GridReader reader, GridValueCodec codec) =>
            new(codec.ReadRequired<IReadOnlyList<KeyValue>>(ref reader, "ScanPage.Items"),
                reader.ReadOptionalBytes(GridValueCodec.MaxKeyLength));
    }

    private sealed class ShardProofCodec() : BuiltIn<ShardProof>(GridValueTag.ShardProof)
    {
        public override void WriteBody(ref GridWriter writer, ShardProof value, GridValueCodec codec)
        {
            Require(value.Range, "ShardProof.Range");
            Require(value.Proof, "ShardProof.Proof");
            writer.WriteVarInt64(value.ShardId);
            codec.Write(ref writer, value.Range);
            writer.WriteVarInt64(value.Version);
            writer.WriteBytes(value.Proof.Encode());
        }

        public override ShardProof ReadBody(ref GridReader reader, GridValueCodec codec)
        {
            long shard = reader.ReadVarInt64();
            KeyRange range = codec.ReadRequired<KeyRange>(ref reader, "ShardProof.Range");
            long version = reader.ReadVarInt64();
            long at = reader.Position;
            ReadOnlySpan<byte> encoded = reader.ReadBytesSpan(MaxSmtProofBytes);
            SmtProof proof;
            try
            {
                proof = SmtProof.Decode(encoded);
            }
            catch (SmtProofFormatException ex)
            {
                throw new GridException(GridErrorCode.ProtocolViolation, $"The Merkle proof at offset {at} is malformed: {ex.Message}", ex);
            }
            return new ShardProof(shard, range, version, proof);
        }
    }

    private sealed class ShardStatusCodec() : BuiltIn<ShardStatus>(GridValueTag.ShardStatus)
    {
        public override void WriteBody(ref GridWriter writer, ShardStatus value, GridValueCodec codec)
        {
            Require(value.Range, "ShardStatus.Range");
            writer.WriteVarInt64(value.ShardId);
            codec.Write(ref writer, value.Range);
            writer.WriteVarInt64(value.Version);
            writer.WriteVarInt64(value.TreeVersion);
            WriteText(ref writer, value.Root, "ShardStatus.Root");
            writer.WriteVarInt64(value.KeyCount);
            writer.WriteVarInt64(value.Epoch);
            WriteText(ref writer, value.Silo, "ShardStatus.Silo");
        }

        public override ShardStatus ReadBody(ref GridReader reader, GridValueCodec codec) =>
            new(reader.ReadVarInt64(),
                codec.ReadRequired<KeyRange>(ref reader, "ShardStatus.Range"),
                reader.ReadVarInt64(),
                reader.ReadVarInt64(),
                reader.ReadString(GridValueCodec.MaxStringBytes),
                reader.ReadVarInt64(),
                reader.ReadVarInt64(),
                reader.ReadString(GridValueCodec.MaxStringBytes));
    }

    private sealed class ShardMapCodec() : BuiltIn<ShardMap>(GridValueTag.ShardMap)
    {
        public override void WriteBody(ref GridWriter writer, ShardMap value, GridValueCodec codec)
        {
            Require(value.Shards, "ShardMap.Shards");
            writer.WriteVarInt64(value.Generation);
            codec.Write(ref writer, value.Shards);
        }

        public override ShardMap ReadBody(ref GridReader reader, GridValueCodec codec) =>
            new(reader.ReadVarInt64(), codec.ReadRequired<ShardMapEntry[]>(ref reader, "ShardMap.Shards"));
    }

    private sealed class ShardMapEntryCodec() : BuiltIn<ShardMapEntry>(GridValueTag.ShardMapEntry)
    {
        public override void WriteBody(ref GridWriter writer, ShardMapEntry value, GridValueCodec codec)
        {
            Require(value.Range, "ShardMapEntry.Range");
            writer.WriteVarInt64(value.ShardId);
            codec.Write(ref writer, value.Range);
            WriteText(ref writer, value.Endpoint, "ShardMapEntry.Endpoint");
            writer.WriteVarInt64(value.Epoch);
        }

        public override ShardMapEntry ReadBody(ref GridReader reader, GridValueCodec codec) =>
            new(reader.ReadVarInt64(),
                codec.ReadRequired<KeyRange>(ref reader, "ShardMapEntry.Range"),
                reader.ReadString(GridValueCodec.MaxStringBytes),
                reader.ReadVarInt64());
    }

    private sealed class OwnerHintCodec() : BuiltIn<OwnerHint>(GridValueTag.OwnerHint)
    {
        public override void WriteBody(ref GridWriter writer, OwnerHint value, GridValueCodec codec)
        {
            writer.WriteVarInt64(value.ShardId);
            WriteText(ref writer, value.Endpoint, "OwnerHint.Endpoint");
            writer.WriteVarInt64(value.Epoch);
        }

        public override OwnerHint ReadBody(ref GridReader reader, GridValueCodec codec) =>
            new(reader.ReadVarInt64(), reader.ReadString(GridValueCodec.MaxStringBytes), reader.ReadVarInt64());
    }

    private sealed class ShardMoveResultCodec() : BuiltIn<Grid.Cluster.ShardMoveResult>(GridValueTag.ShardMoveResult)
    {
        public override void WriteBody(ref GridWriter writer, Grid.Cluster.ShardMoveResult value, GridValueCodec codec)
        {
            writer.WriteVarInt64(value.ShardId);
            WriteText(ref writer, value.From, "ShardMoveResult.From");
            WriteText(ref writer, value.To, "ShardMoveResult.To");
            writer.WriteVarInt64(value.Epoch);
            writer.WriteVarInt64(value.Version);
            writer.WriteVarInt64(value.ElapsedMicroseconds);
        }

        public override Grid.Cluster.ShardMoveResult ReadBody(ref GridReader reader, GridValueCodec codec) =>
            new(reader.ReadVarInt64(), reader.ReadString(GridValueCodec.MaxStringBytes), reader.ReadString(GridValueCodec.MaxStringBytes),
                reader.ReadVarInt64(), reader.ReadVarInt64(), reader.ReadVarInt64());
    }
}
