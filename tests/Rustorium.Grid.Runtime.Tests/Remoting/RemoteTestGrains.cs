using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;
using Rustorium.Grid.Runtime.Grains;
using Rustorium.Grid.Runtime.Tests.Grains;

namespace Rustorium.Grid.Runtime.Tests.Remoting;

[GrainType("test-remote")]
public interface IRemoteTestGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task<long> Add(long delta);

    [GrainMethod(2)] Task<string?> Echo(string? text);

    [GrainMethod(3)] Task<byte[]?> EchoBytes(byte[]? bytes);

    [GrainMethod(4)] Task ThrowGrid(GridErrorCode code, string message, OwnerHint? hint);

    [GrainMethod(5)] Task<int> ThrowOther(string message);

    [GrainMethod(6)] Task WaitForCancellation(string name, CancellationToken cancellationToken);

    [GrainMethod(7), AlwaysInterleave] Task Handshake(string me, string partner);

    [GrainMethod(8)] ValueTask<SyncMode> EchoMode(SyncMode mode);

    [GrainMethod(9), ReadOnly] Task<IReadOnlyList<KeyValue>> EchoList(IReadOnlyList<KeyValue> items);

    [GrainMethod(10)] ValueTask Record(int value, CancellationToken cancellationToken);

    [GrainMethod(11)] Task<long?> EchoNullable(long? value);

    [GrainMethod(12)] Task<int[]> Sort(int[] values);

    [GrainMethod(13)] Task<ulong> EchoULong(ulong value, bool negate);

    [GrainMethod(14)] Task<int> ThrowCancelled();

    [GrainMethod(15)] Task<long> CallOther(long other);

    [GrainMethod(16)] Task<long> CallBack(long caller);
}

public sealed class RemoteTestGrain(GrainJournal journal) : Grain, IRemoteTestGrain
{
    private long _total;

    public Task<long> Add(long delta) => Task.FromResult(_total += delta);

    public Task<string?> Echo(string? text) => Task.FromResult(text);

    public Task<byte[]?> EchoBytes(byte[]? bytes) => Task.FromResult(bytes);

    public async Task ThrowGrid(GridErrorCode code, string message, OwnerHint? hint)
    {
        await Task.Yield();
        throw new GridException(code, message) { OwnerHint = hint };
    }

    public async Task<int> ThrowOther(string message)
    {
        await Task.Yield();
        throw new InvalidOperationException(message);
    }

    public async Task WaitForCancellation(string name, CancellationToken cancellationToken)
    {
        journal.Add($"{name} start");
        journal.Raise($"{name} waiting");
        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            journal.Raise($"{name} cancelled");
            throw;
        }
    }

    public async Task Handshake(string me, string partner)
    {
        journal.Raise($"{me} in");
        await journal.WaitFor($"{partner} in");
    }

    public ValueTask<SyncMode> EchoMode(SyncMode mode) => new(mode);

    public Task<IReadOnlyList<KeyValue>> EchoList(IReadOnlyList<KeyValue> items) => Task.FromResult(items);

    public ValueTask Record(int value, CancellationToken cancellationToken)
    {
        journal.Add($"record {value} cancellable={cancellationToken.CanBeCanceled}");
        return default;
    }

    public Task<long?> EchoNullable(long? value) => Task.FromResult(value);

    public Task<int[]> Sort(int[] values) => Task.FromResult(values.Order().ToArray());

    public Task<ulong> EchoULong(ulong value, bool negate) => Task.FromResult(negate ? ~value : value);

    public async Task<int> ThrowCancelled()
    {
        await Task.Yield();
        throw new OperationCanceledException("the grain gave up on its own");
    }

    public Task<long> CallOther(long other) => GrainFactory.GetGrain<IRemoteTestGrain>(other).CallBack(GrainId.IntegerKey);

    public Task<long> CallBack(long caller) => GrainFactory.GetGrain<IRemoteTestGrain>(caller).Add(1);
}

[GrainType("test-remote-named")]
public interface INamedRemoteGrain : IGrainWithStringKey
{
    [GrainMethod(1)] Task<string> GetKey();
}

public sealed class NamedRemoteGrain : Grain, INamedRemoteGrain
{
    public Task<string> GetKey() => Task.FromResult(GrainId.StringKey);
}

/// <summary>Registered nowhere: calls to it reach a silo that does not host it.</summary>
[GrainType("test-unhosted")]
public interface IUnhostedGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task<int> Get();
}

/// <summary>A valid grain interface whose result type has no wire encoding.</summary>
[GrainType("test-unremotable")]
public interface IUnremotableGrain : IGrainWithIntegerKey
{
    [GrainMethod(1)] Task<int> Fine();

    [GrainMethod(2)] Task<Guid> NotOnTheWire();
}

/// <summary>
/// An in-memory <see cref="IShardGrain"/> with real sparse Merkle proofs, so the contract records cross the wire with
/// everything in them. Keys starting with 0xFF belong to "another silo": refused with NotOwner and an owner hint.
/// </summary>
public sealed class InMemoryShardGrain : Grain, IShardGrain
{
    public const string OwnerEndpoint = "10.1.2.3:7400";
    private readonly SortedDictionary<byte[], byte[]> _data = new(Comparer<byte[]>.Create((a, b) => KeyRange.Compare(a, b)));
    private readonly SparseMerkleTree _tree = new();
    private long _version;

    private long ShardId => GrainId.IntegerKey;

    private static KeyRange Range { get; } = new([], [0xFF]);

    public Task<WriteResult> PutAsync(byte[] key, byte[] value, SyncMode mode, CancellationToken cancellationToken)
    {
        CheckKey(key);
        Put(key, value);
        return Task.FromResult(Committed(mode));
    }

    public Task<WriteResult> DeleteAsync(byte[] key, SyncMode mode, CancellationToken cancellationToken)
    {
        CheckKey(key);
        Delete(key);
        return Task.FromResult(Committed(mode));
    }

    public Task<WriteResult> BatchAsync(BatchOperation[] operations, SyncMode mode, CancellationToken cancellationToken)
    {
        foreach (var op in operations) CheckKey(op.Key);
        foreach (var op in operations)
        {
            if (op.Kind == BatchOperationKind.Put) Put(op.Key, op.Value!);
            else Delete(op.Key);
        }
        return Task.FromResult(Committed(mode));
    }

    public Task<ProvenWriteResult> WriteWithProofAsync(byte[] key, byte[] value, CancellationToken cancellationToken)
    {
        CheckKey(key);
        Put(key, value);
        var write = Committed(SyncMode.Full);
        return Task.FromResult(new ProvenWriteResult(write, Prove(key)));
    }

    public Task<ReadResult> ReadAsync(byte[] key, bool withProof, CancellationToken cancellationToken)
    {
        CheckKey(key);
        byte[]? value = _data.GetValueOrDefault(key);
        return Task.FromResult(new ReadResult(value, _version, 1_000 + _version, "test-region", withProof ? Prove(key) : null));
    }

    public async Task<ReadResult[]> ReadManyAsync(byte[][] keys, bool withProof, CancellationToken cancellationToken)
    {
        var results = new ReadResult[keys.Length];
        for (int i = 0; i < keys.Length; i++) results[i] = await ReadAsync(keys[i], withProof, cancellationToken);
        return results;
    }

    public Task<ScanPage> ScanAsync(byte[] start, byte[]? end, int limit, CancellationToken cancellationToken)
    {
        var rows = _data.Where(kv => KeyRange.Compare(kv.Key, start) >= 0 && (end is null || KeyRange.Compare(kv.Key, end) < 0)).ToList();
        var items = rows.Take(limit).Select(kv => new KeyValue(kv.Key, kv.Value, _version)).ToList();
        return Task.FromResult(new ScanPage(items, rows.Count > limit ? rows[limit].Key : null));
    }

    public Task<ShardStatus> GetStatusAsync(CancellationToken cancellationToken) =>
        Task.FromResult(new ShardStatus(ShardId, Range, _version, _version, _tree.Root.ToString(), _data.Count, 7, "test-silo"));

    private void CheckKey(byte[] key)
    {
        if (key.Length > 0 && key[0] == 0xFF)
            throw new GridException(GridErrorCode.NotOwner, $"Key {Convert.ToHexStringLower(key)} is not in shard {ShardId}.") { OwnerHint = new OwnerHint(ShardId + 1, OwnerEndpoint, 42) };
        if (key.Length == 0) throw GridException.InvalidArgument("Keys must not be empty.");
    }

    private void Put(byte[] key, byte[] value)
    {
        _data[key] = value;
        _tree.Upsert(PoseidonBytes.Hash(key), PoseidonBytes.Hash(value));
    }

    private void Delete(byte[] key)
    {
        if (_data.Remove(key)) _tree.Delete(PoseidonBytes.Hash(key));
    }

    private WriteResult Committed(SyncMode mode)
    {
        _version++;
        return new WriteResult(ShardId, _version, 1_000 + _version + (long)mode);
    }

    private ShardProof Prove(byte[] key) => new(ShardId, Range, _version, _tree.Prove(PoseidonBytes.Hash(key)));
}
