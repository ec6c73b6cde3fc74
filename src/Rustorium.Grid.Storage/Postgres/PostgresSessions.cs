using System.Security.Cryptography;
using System.Text;
using Rustorium.Grid.Cluster;

namespace Rustorium.Grid.Storage.Postgres;

/// <summary>
/// Names the PostgreSQL sessions of one silo incarnation (their <c>application_name</c>), so that when the cluster declares
/// the silo dead its sessions can be ended: a paused or partitioned silo may be frozen in the middle of a commit,
/// holding a shard row's lock, and neither <c>statement_timeout</c> nor <c>idle_in_transaction_session_timeout</c> ends a
/// session that is waiting for the rest of a pipelined statement. Ending its sessions rolls its open transaction back and
/// frees the lock, so the shard's new owner can claim it (docs/membership.md).
/// </summary>
public static class PostgresSessions
{
    /// <summary>
    /// The startup option both stores' sessions begin with: PostgreSQL's JIT compiler off. Their statements are short, and
    /// the planner's guesses for tables not analysed yet can pass <c>jit_above_cost</c>, which made an eight-row read spend
    /// milliseconds compiling itself at every call. A connection string's own <c>Options</c> come after it, so
    /// <c>-c jit=on</c> there turns it back on.
    /// </summary>
    public const string NoJit = "-c jit=off";

    /// <summary>A connection string's startup <c>Options</c> with <see cref="NoJit"/> in front (theirs win: the last -c wins).</summary>
    internal static string WithoutJit(string? options) => string.IsNullOrWhiteSpace(options) ? NoJit : NoJit + " " + options;

    /// <summary>PostgreSQL keeps at most this many bytes of an application name.</summary>
    public const int MaxApplicationNameBytes = 63;

    /// <summary>The <c>application_name</c> of every session of <paramref name="silo"/>: <c>rgrid host:port@generation</c>, or a hash of it when longer than PostgreSQL keeps.</summary>
    public static string ApplicationNameFor(SiloAddress silo)
    {
        var name = "rgrid " + silo;
        if (Encoding.UTF8.GetByteCount(name) <= MaxApplicationNameBytes && name.All(c => c is >= ' ' and <= '~')) return name;
        return "rgrid #" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(silo.ToString())))[..40];
    }
}
