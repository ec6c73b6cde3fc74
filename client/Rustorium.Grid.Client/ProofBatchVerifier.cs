namespace Rustorium.Grid.Client;

/// <summary>
/// Verifies the proofs of a client's concurrent calls together (<see cref="ShardProof.ExplainMany"/>), batched as a group
/// commit batches writes (<see cref="RequestBatcher{TRequest}"/>). One proof alone costs about depth + 1 sequential Poseidon
/// hashes (about a millisecond at a million keys); batched, the hashes of up to eight proofs run side by side, so a client
/// doing many verified calls at once spends several times less CPU on them.
/// </summary>
internal sealed class ProofBatchVerifier : RequestBatcher<ProofBatchVerifier.Pending>
{
    /// <summary>Completes when the proof shows exactly this answer; faults with <see cref="GridErrorCode.VerificationFailed"/> otherwise.</summary>
    public Task EnsureVerifiesAsync(ShardProof proof, byte[] key, byte[]? value)
    {
        ArgumentNullException.ThrowIfNull(proof);
        ArgumentNullException.ThrowIfNull(key);
        var pending = new Pending(proof, key, value);
        Submit(pending);
        return pending.Done.Task;
    }

    protected override void RunBatch(List<Pending> batch)
    {
        var reasons = ShardProof.ExplainMany(batch.Select(p => (p.Proof, p.Key, p.Value)).ToList());
        for (int i = 0; i < batch.Count; i++)
        {
            if (reasons[i] is { } reason) batch[i].Done.TrySetException(batch[i].Proof.Rejection(reason));
            else batch[i].Done.TrySetResult();
        }
    }

    protected override void FailBatch(List<Pending> batch, Exception error)
    {
        foreach (var p in batch) p.Done.TrySetException(error);
    }

    internal sealed record Pending(ShardProof Proof, byte[] Key, byte[]? Value)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
