using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Serialization;

namespace Rustorium.Grid.Runtime.Remoting;

/// <summary>What a request body carries; the first byte of every body. Explicit and append-only.</summary>
public enum GrainRequestBodyKind : byte
{
    /// <summary>
    /// A grain call, value encoding version 1: target grain, interface, method id, arguments, call chain
    /// (docs/protocol.md, "Grain calls"). The response body is the method's result as one value, or empty.
    /// </summary>
    GrainCall = 1,
}

/// <summary>
/// Encodes and decodes the grain call request body (inside the transport's Request payload, after the deadline):
/// <c>u8 kind | grain id target | string interface | u16 method id | varuint32 argument count | value × count |
/// varuint32 chain length | grain id × length</c>, where a grain id is <c>string type | u8 key kind | varint key or
/// string key</c>.
/// </summary>
internal static class GrainCallBody
{
    /// <summary>Longest grain type or interface name on the wire, in UTF-8 bytes (256 characters at most 4 bytes each).</summary>
    public const int MaxTypeNameBytes = GrainId.MaxTypeNameLength * 4;

    /// <summary>Longest string grain key on the wire, in UTF-8 bytes: 16 KiB.</summary>
    public const int MaxStringKeyBytes = 16 * 1024;

    /// <summary>Longest call chain on the wire (grains waiting on the call): 256.</summary>
    public const int MaxCallChainLength = 256;

    public static void Write(ref GridWriter writer, GrainCall call, GrainMethodCodec method)
    {
        if (call.CallChain.Count > MaxCallChainLength)
            throw GridException.InvalidArgument($"The call chain of {call} is {call.CallChain.Count} grains deep; at most {MaxCallChainLength} cross the wire.");
        writer.WriteByte((byte)GrainRequestBodyKind.GrainCall);
        WriteGrainId(ref writer, call.Target);
        writer.WriteString(call.InterfaceName);
        writer.WriteUInt16(call.MethodId);
        method.WriteArguments(ref writer, call.Arguments);
        writer.WriteCount(call.CallChain.Count);
        for (int i = 0; i < call.CallChain.Count; i++) WriteGrainId(ref writer, call.CallChain[i]);
    }

    /// <summary>Reads the kind and the addressing part: everything needed to find the method before decoding its arguments.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.ProtocolViolation"/> if malformed.</exception>
    public static (GrainId Target, string InterfaceName, ushort MethodId) ReadHeader(ref GridReader reader)
    {
        if (reader.Remaining == 0) throw GridWireFormat.ProtocolViolation("The request body is empty; a grain call starts with its body kind (1).");
        byte kind = reader.ReadByte();
        if (kind != (byte)GrainRequestBodyKind.GrainCall)
            throw GridWireFormat.ProtocolViolation($"Unknown request body kind {kind}; this silo understands 1 (grain call).");
        GrainId target = ReadGrainId(ref reader, "target");
        long at = reader.Position;
        string interfaceName = reader.ReadString(MaxTypeNameBytes);
        if (!GrainId.IsValidTypeName(interfaceName))
            throw GridWireFormat.ProtocolViolation($"Interface name at offset {at} is not a valid grain type name.");
        at = reader.Position;
        ushort methodId = reader.ReadUInt16();
        if (methodId == 0) throw GridWireFormat.ProtocolViolation($"Method id 0 at offset {at} is reserved.");
        return (target, interfaceName, methodId);
    }

    /// <summary>Reads the call chain that ends the body, and checks nothing follows it.</summary>
    public static GrainId[] ReadCallChainToEnd(ref GridReader reader)
    {
        // A grain id takes at least 4 bytes (1-byte type, key kind, 1-byte key... and the type's length byte).
        int count = reader.ReadCount(MaxCallChainLength, minElementBytes: 4);
        var chain = count == 0 ? [] : new GrainId[count];
        for (int i = 0; i < count; i++) chain[i] = ReadGrainId(ref reader, "call chain entry");
        reader.ExpectEnd();
        return chain;
    }

    private static void WriteGrainId(ref GridWriter writer, GrainId id)
    {
        writer.WriteString(id.Type);
        writer.WriteByte((byte)id.KeyKind);
        if (id.KeyKind == GrainKeyKind.Integer)
        {
            writer.WriteVarInt64(id.IntegerKey);
            return;
        }
        ValueCodecs.CheckString(id.StringKey, MaxStringKeyBytes, $"The key of grain {id.Type}");
        writer.WriteString(id.StringKey);
    }

    private static GrainId ReadGrainId(ref GridReader reader, string what)
    {
        long at = reader.Position;
        string type = reader.ReadString(MaxTypeNameBytes);
        if (!GrainId.IsValidTypeName(type))
            throw GridWireFormat.ProtocolViolation($"The {what} at offset {at} has an invalid grain type name.");
        long kindAt = reader.Position;
        byte kind = reader.ReadByte();
        return (GrainKeyKind)kind switch
        {
            GrainKeyKind.Integer => GrainId.Create(type, reader.ReadVarInt64()),
            GrainKeyKind.String => GrainId.Create(type, reader.ReadString(MaxStringKeyBytes)),
            _ => throw GridWireFormat.ProtocolViolation($"Key kind {kind} at offset {kindAt} is not defined (1 integer, 2 string)."),
        };
    }
}
