namespace Rustorium.Grid;

/// <summary>How durable a write is when it is acknowledged. Wire values are explicit and append-only.</summary>
public enum SyncMode : byte
{
    /// <summary>Acknowledged once applied in memory; a crash may lose it.</summary>
    None = 1,

    /// <summary>Acknowledged once handed to the store; flushed to disk shortly after (group flush).</summary>
    Async = 2,

    /// <summary>Acknowledged once the store's transaction is durable on disk. The default, and the only mode that promises no acknowledged write is lost.</summary>
    Full = 3,
}
