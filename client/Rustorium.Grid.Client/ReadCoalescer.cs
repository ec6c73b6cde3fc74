using System.Collections.Concurrent;
using System.Diagnostics;

namespace Rustorium.Grid.Client;

/// <summary>
/// Sends the concurrent reads of one shard together, in one <see cref="IShardGrain.ReadManyAsync"/> call, as a group commit
/// batches writes: while <see cref="MaxInFlight"/> calls of a shard are out, the reads that arrive wait and leave together
/// in the next. A lone read leaves at once, on its own.
/// </summary>
/// <remarks>
/// <para>Why: a remote call costs the client and the silo far more than the few bytes of a read (a frame, a dispatch, a
/// grain turn, a response, a continuation each), and under load most of a read's CPU was that. One call for many reads
/// pays it once.</para>
/// <para>A read the batch cannot answer (the shard moved, the silo is gone, a key the silo refuses, any error but a
/// timeout) completes with null: the caller then sends it alone through the ordinary path, which refreshes the shard map
/// and retries, so each read still ends as it would alone. Reads are idempotent, so sending one twice is harmless. A read
/// that waited and was sent for longer than the call timeout in all fails with <see cref="GridErrorCode.Timeout"/>.</para>
/// </remarks>
internal sealed class ReadCoalescer
{
    /// <summary>Calls of one shard (and proof choice) out at once; more reads wait for one of them to come back.</summary>
    internal const int MaxInFlight = 1;

    private readonly ConcurrentDictionary<(long ShardId, string Endpoint, bool WithProof), Lane> _lanes = new();
    private readonly Func<string, long, CancellationToken, Task<IShardGrain>> _grain;
    private readonly int _maxBatch;
    private readonly TimeSpan _timeout;

    /// <param name="grain">The reference to a shard's grain at an endpoint.</param>
    /// <param name="maxBatch">Most reads in one call.</param>
    /// <param name="timeout">Deadline of one call.</param>
    public ReadCoalescer(Func<string, long, CancellationToken, Task<IShardGrain>> grain, int maxBatch, TimeSpan timeout)
    {
        _grain = grain;
        _maxBatch = maxBatch;
        _timeout = timeout;
    }

    /// <summary>Reads <paramref name="key"/> from <paramref name="shard"/>, together with other reads of it.</summary>
    /// <returns>The answer, or null when the batch could not give it (send the read alone).</returns>
    public Task<ReadResult?> ReadAsync(ShardMapEntry shard, byte[] key, bool withProof, CancellationToken cancellationToken) =>
        _lanes.GetOrAdd((shard.ShardId, shard.Endpoint, withProof), k => new Lane(this, k.ShardId, k.Endpoint, k.WithProof))
            .ReadAsync(key, cancellationToken);

    /// <summary>Forgets the idle lanes of shards (or owners) that are not in <paramref name="map"/> any more.</summary>
    public void Retain(ShardMap map)
    {
        var current = map.Shards.Select(s => (s.ShardId, s.Endpoint)).ToHashSet();
        foreach (var (key, lane) in _lanes)
        {
            if (!current.Contains((key.ShardId, key.Endpoint)) && lane.IsIdle) _lanes.TryRemove(new KeyValuePair<(long, string, bool), Lane>(key, lane));
        }
    }

    private sealed class Request(byte[] key) : TaskCompletionSource<ReadResult?>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public byte[] Key { get; } = key;
        public long Started { get; } = Stopwatch.GetTimestamp();
        public CancellationTokenRegistration Cancellation;
    }

    /// <summary>The reads of one shard at one owner, with or without proofs.</summary>
    private sealed class Lane(ReadCoalescer owner, long shardId, string endpoint, bool withProof)
    {
        private readonly object _gate = new();
        private List<Request> _pending = [];
        private int _inFlight;

        public bool IsIdle
        {
            get
            {
                lock (_gate) return _inFlight == 0 && _pending.Count == 0;
            }
        }

        public Task<ReadResult?> ReadAsync(byte[] key, CancellationToken cancellationToken)
        {
            var request = new Request(key);
            if (cancellationToken.CanBeCanceled)
            {
                request.Cancellation = cancellationToken.UnsafeRegister(
                    static (state, token) => ((Request)state!).TrySetCanceled(token), request);
            }
            List<Request>? batch = null;
            lock (_gate)
            {
                _pending.Add(request);
                if (_inFlight < MaxInFlight)
                {
                    _inFlight++;
                    batch = TakeBatch();
                }
            }
            if (batch is not null) _ = RunAsync(batch);
            return request.Task;
        }

        /// <summary>Up to the batch size of the waiting reads, oldest first (under the gate).</summary>
        private List<Request> TakeBatch()
        {
            if (_pending.Count <= owner._maxBatch)
            {
                var all = _pending;
                _pending = [];
                return all;
            }
            var first = _pending.GetRange(0, owner._maxBatch);
            _pending.RemoveRange(0, owner._maxBatch);
            return first;
        }

        /// <summary>Sends <paramref name="batch"/>, then whatever waits, until nothing does.</summary>
        private async Task RunAsync(List<Request> batch)
        {
            while (true)
            {
                await SendAsync(batch).ConfigureAwait(false);
                lock (_gate)
                {
                    if (_pending.Count == 0)
                    {
                        _inFlight--;
                        return;
                    }
                    batch = TakeBatch();
                }
            }
        }

        private async Task SendAsync(List<Request> batch)
        {
            // Reads cancelled while they waited are not sent.
            batch.RemoveAll(r => r.Task.IsCompleted);
            if (batch.Count == 0) return;
            try
            {
                // A read's whole wait, in the queue and in its call, is bounded by the timeout: the call gets what is left of the
                // oldest read's (the batch is oldest first).
                var left = owner._timeout - Stopwatch.GetElapsedTime(batch[0].Started);
                if (left <= TimeSpan.Zero)
                    throw GridClient.CallTimedOut(owner._timeout);
                using var deadline = new CancellationTokenSource(left);
                try
                {
                    var grain = await owner._grain(endpoint, shardId, deadline.Token).ConfigureAwait(false);
                    if (batch.Count == 1)
                    {
                        Complete(batch[0], await grain.ReadAsync(batch[0].Key, withProof, deadline.Token).ConfigureAwait(false));
                        return;
                    }
                    var keys = new byte[batch.Count][];
                    for (int i = 0; i < keys.Length; i++) keys[i] = batch[i].Key;
                    var results = await grain.ReadManyAsync(keys, withProof, deadline.Token).ConfigureAwait(false);
                    if (results.Length != batch.Count)
                        throw new GridException(GridErrorCode.Internal, $"The silo answered {results.Length} reads for {batch.Count} keys.");
                    for (int i = 0; i < results.Length; i++) Complete(batch[i], results[i]);
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested)
                {
                    throw GridClient.CallTimedOut(owner._timeout);
                }
            }
            catch (GridException e) when (e.Code == GridErrorCode.Timeout)
            {
                // Sending them again would wait as long once more: the deadline of these reads has passed.
                foreach (var r in batch) Fail(r, e);
            }
            catch (Exception)
            {
                // Each read goes alone through the ordinary path, which handles moves, failovers and refusals key by key.
                foreach (var r in batch) Complete(r, null);
            }
        }

        private static void Complete(Request request, ReadResult? result)
        {
            request.Cancellation.Dispose();
            request.TrySetResult(result);
        }

        private static void Fail(Request request, Exception error)
        {
            request.Cancellation.Dispose();
            request.TrySetException(error);
        }
    }
}
