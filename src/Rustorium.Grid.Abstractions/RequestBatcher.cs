namespace Rustorium.Grid;

/// <summary>
/// Runs requests in batches, as a group commit does: while one batch runs, the requests that arrive wait and go together into
/// the next. Used where one batch costs much less than its requests one by one (hashing eight at a time with AVX-512).
/// </summary>
/// <remarks>
/// At most <see cref="MaxConcurrentBatches"/> batches run at once, on the thread pool; a request submitted while fewer run
/// starts a batch of its own at once, so a lone request waits for nothing. <see cref="RunBatch"/> must answer every request
/// of its batch; if it throws, <see cref="FailBatch"/> answers them all with the exception.
/// </remarks>
/// <typeparam name="TRequest">A request, carrying whatever completes it.</typeparam>
public abstract class RequestBatcher<TRequest>
{
    private readonly object _gate = new();
    private List<TRequest> _pending = new();
    private int _running;

    /// <summary>A batcher running up to <paramref name="maxConcurrentBatches"/> batches at once (default: half the processors, at least one).</summary>
    protected RequestBatcher(int? maxConcurrentBatches = null)
    {
        MaxConcurrentBatches = maxConcurrentBatches ?? Math.Max(1, Environment.ProcessorCount / 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrentBatches, 1);
    }

    /// <summary>Most batches that run at once.</summary>
    public int MaxConcurrentBatches { get; }

    /// <summary>Queues <paramref name="request"/> for the next batch.</summary>
    protected void Submit(TRequest request)
    {
        bool start = false;
        lock (_gate)
        {
            _pending.Add(request);
            if (_running < MaxConcurrentBatches)
            {
                _running++;
                start = true;
            }
        }
        if (start) _ = Task.Run(Drain);
    }

    /// <summary>Runs one batch and answers each of its requests.</summary>
    protected abstract void RunBatch(List<TRequest> batch);

    /// <summary>Answers every request of a batch whose <see cref="RunBatch"/> threw.</summary>
    protected abstract void FailBatch(List<TRequest> batch, Exception error);

    private void Drain()
    {
        while (true)
        {
            List<TRequest> batch;
            lock (_gate)
            {
                if (_pending.Count == 0)
                {
                    _running--;
                    return;
                }
                batch = _pending;
                _pending = new List<TRequest>();
            }
            try
            {
                RunBatch(batch);
            }
            catch (Exception e)
            {
                FailBatch(batch, e);
            }
        }
    }
}
