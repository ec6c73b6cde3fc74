using System.Net.Sockets;
using Npgsql;

namespace Rustorium.Grid.Storage.Postgres;

/// <summary>
/// Turns Npgsql's failures into the grid's typed errors. Messages name the store by host, port, database and schema —
/// never by connection string, which may carry a password — and say what to check.
/// </summary>
internal static class PostgresClusterErrors
{
    /// <summary>True for the failures <see cref="Map"/> translates (the caller's own cancellation is not one of them).</summary>
    public static bool IsStoreFailure(Exception e) => e is NpgsqlException or TimeoutException;

    public static GridException Map(Exception e, string store, string operation)
    {
        if (e is PostgresException pg) return MapServerError(pg, store, operation);
        if (Find<TimeoutException>(e) is not null)
            return new GridException(GridErrorCode.Timeout,
                $"{operation}: {store} did not answer in time ({e.Message}). Check that the server is up and not overloaded, " +
                "and the pool size and timeouts of the connection string.", e);
        if (Find<SocketException>(e) is { } socket)
            return new GridException(GridErrorCode.Unavailable,
                $"{operation}: cannot reach {store}: {socket.SocketErrorCode} ({socket.Message}). Check that PostgreSQL is running and reachable.", e);
        return new GridException(GridErrorCode.Unavailable, $"{operation}: {store} failed: {e.Message}", e);
    }

    private static GridException MapServerError(PostgresException e, string store, string operation)
    {
        var state = e.SqlState;
        string what = $"{operation}: {store} answered {state} {e.MessageText}";
        return state switch
        {
            // query_canceled is what a statement timeout raises; the caller's own cancellation never gets here.
            "57014" or "55P03" => new GridException(GridErrorCode.Timeout, $"{what}. The statement ran out of time or waited too long for a lock.", e),
            // Serialisation failure, deadlock: transient, the call changed nothing and may be retried.
            // A unique key (a silo address joining twice past the endpoint's lock, which the store never does itself).
            "23505" => new GridException(GridErrorCode.Conflict, $"{what}. Nothing was changed.", e),
            "40001" or "40P01" => new GridException(GridErrorCode.Unavailable, $"{what}. Nothing was changed; retry.", e),
            _ when state.StartsWith("08", StringComparison.Ordinal) // connection exception
                || state.StartsWith("53", StringComparison.Ordinal) // insufficient resources (too many connections, disk full)
                || state.StartsWith("57P", StringComparison.Ordinal) // server shutting down or starting up
                => new GridException(GridErrorCode.Unavailable, $"{what}. Retry later or elsewhere.", e),
            _ when state.StartsWith("28", StringComparison.Ordinal) || state is "3D000" or "3F000" or "42501"
                => new GridException(GridErrorCode.Unavailable,
                    $"{what}. Check the user, password, database and schema of the cluster store's connection string and the user's privileges.", e),
            _ when state is "42P01" or "42703" or "42883"
                => new GridException(GridErrorCode.Internal,
                    $"{what}. The schema does not have the tables this build expects; was it migrated by this build?", e),
            _ => new GridException(GridErrorCode.Internal, $"{what}.", e),
        };
    }

    private static T? Find<T>(Exception? e) where T : Exception
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is T found) return found;
        }
        return null;
    }
}
