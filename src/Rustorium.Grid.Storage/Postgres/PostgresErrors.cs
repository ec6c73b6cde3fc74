using System.Net.Sockets;
using Npgsql;

namespace Rustorium.Grid.Storage.Postgres;

/// <summary>
/// Turns PostgreSQL's and Npgsql's failures into the grid's typed errors, naming the server, database and schema (never the
/// connection string: it may hold a password) so an operator knows where to look.
/// </summary>
internal static class PostgresErrors
{
    /// <summary>25P03, <c>idle_in_transaction_session_timeout</c> (not in Npgsql's list of codes).</summary>
    private const string IdleInTransactionSessionTimeout = "25P03";

    /// <summary>True for the failures this class maps (the driver's and the server's); anything else is a bug and propagates as is.</summary>
    public static bool IsDatabaseFailure(Exception e) => e is NpgsqlException or TimeoutException;

    /// <summary>A failure while opening a connection: the server cannot be used at all.</summary>
    public static GridException Connect(Exception e, string where)
    {
        if (e is PostgresException p) return Map(p, where, "Connecting");
        string hint = Innermost(e) is SocketException { SocketErrorCode: SocketError.ConnectionRefused }
            ? "nothing accepts connections there; is the server running and is the Host/Port right?"
            : e is NpgsqlException { InnerException: TimeoutException } || e is TimeoutException
                ? "no connection could be made or taken from the pool within the connect timeout (Timeout / Max Pool Size in the connection string)."
                : "check the server, the network and the connection settings.";
        return new GridException(GridErrorCode.Unavailable, $"Cannot connect to {where}: {e.Message} ({hint})", e);
    }

    /// <summary>A failure of a statement on an open connection.</summary>
    public static GridException Map(Exception e, string where, string operation)
    {
        if (e is PostgresException p) return Map(p, where, operation);
        if (e is TimeoutException || e.InnerException is TimeoutException)
            return new GridException(GridErrorCode.Timeout,
                $"{operation}: {where} did not answer within the command timeout ({e.Message}).", e);
        return new GridException(GridErrorCode.Unavailable,
            $"{operation}: the connection to {where} failed: {e.Message}.", e);
    }

    private static GridException Map(PostgresException e, string where, string operation)
    {
        string state = e.SqlState, text = e.MessageText;
        return state switch
        {
            PostgresErrorCodes.QueryCanceled => new GridException(GridErrorCode.Timeout,
                $"{operation} on {where} ran longer than the statement timeout (StatementTimeout; it may have been waiting for a lock " +
                $"held by another silo) and was rolled back: {text}", e),
            PostgresErrorCodes.LockNotAvailable => new GridException(GridErrorCode.Timeout,
                $"{operation} on {where} could not take a lock in time and was rolled back: {text}", e),
            IdleInTransactionSessionTimeout => new GridException(GridErrorCode.Timeout,
                $"{operation} on {where}: the server ended the session because it sat idle inside a transaction longer than " +
                $"IdleInTransactionSessionTimeout (was this process paused?); the transaction was rolled back: {text}", e),
            PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected => new GridException(GridErrorCode.Conflict,
                $"{operation} on {where} lost a race with another transaction and was rolled back; retry: {text}", e),
            PostgresErrorCodes.ProgramLimitExceeded => new GridException(GridErrorCode.InvalidArgument,
                $"{operation} on {where} was refused by a PostgreSQL limit (a key longer than the ~2,700 bytes a B-tree entry can hold?) " +
                $"and rolled back: {text}", e),
            PostgresErrorCodes.DataCorrupted or PostgresErrorCodes.IndexCorrupted => new GridException(GridErrorCode.Corrupted,
                $"{operation} on {where}: the server reports corrupt data: {text}", e),
            PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.UndefinedColumn or PostgresErrorCodes.InvalidSchemaName =>
                new GridException(GridErrorCode.Corrupted,
                    $"{operation} on {where}: the schema is missing part of the grid's tables ({text}); was it changed outside the grid?", e),
            PostgresErrorCodes.InvalidCatalogName => new GridException(GridErrorCode.Unavailable,
                $"{operation}: the database of {where} does not exist ({text}); create it or fix Database in the connection string.", e),
            PostgresErrorCodes.InsufficientPrivilege => new GridException(GridErrorCode.Unavailable,
                $"{operation} on {where}: the user lacks a privilege the store needs ({text}); it must own or be granted the schema.", e),
            PostgresErrorCodes.ReadOnlySqlTransaction => new GridException(GridErrorCode.Unavailable,
                $"{operation} on {where}: the server accepts no writes (a standby, or default_transaction_read_only): {text}", e),
            _ when state.StartsWith("28", StringComparison.Ordinal) => new GridException(GridErrorCode.Unavailable,
                $"{operation}: {where} refused the credentials ({text}); check Username and Password.", e),
            _ when state.StartsWith("08", StringComparison.Ordinal) || state.StartsWith("53", StringComparison.Ordinal)
                || state.StartsWith("57P", StringComparison.Ordinal) || state.StartsWith("58", StringComparison.Ordinal) =>
                new GridException(GridErrorCode.Unavailable,
                    $"{operation}: {where} cannot serve the request now ({state}: {text}); retry later.", e),
            _ => new GridException(GridErrorCode.Internal, $"{operation}: unexpected PostgreSQL error on {where} ({state}): {text}", e),
        };
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }
}
