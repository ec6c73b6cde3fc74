using Microsoft.Data.Sqlite;
using Rustorium.Grid.Storage.Sqlite;

namespace Rustorium.Grid.Storage.Tests.Sqlite;

/// <summary>
/// The writer's per-row statements bound straight through SQLitePCL: they must behave as the
/// Microsoft.Data.Sqlite commands they replaced (same values stored, same exceptions), on a real SQLite file.
/// </summary>
public sealed class SqliteRawStatementTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("rustorium-raw-statement-").FullName;
    private readonly SqliteConnection _connection;

    public SqliteRawStatementTests()
    {
        _connection = new SqliteConnection($"Data Source={Path.Combine(_directory, "t.db")};Pooling=False");
        _connection.Open();
        using var create = _connection.CreateCommand();
        create.CommandText = "CREATE TABLE t (id INTEGER NOT NULL PRIMARY KEY, v BLOB NOT NULL CHECK (typeof(v) = 'blob'))";
        create.ExecuteNonQuery();
    }

    [Fact]
    public void Values_are_stored_as_bound_and_the_count_of_changed_rows_is_returned()
    {
        using var insert = new SqliteRawStatement(_connection, "INSERT INTO t (id, v) VALUES ($id, $v) ON CONFLICT (id) DO NOTHING");
        int id = insert.Parameter("$id"), v = insert.Parameter("$v");
        var buffer = new byte[] { 1, 2, 3 };
        insert.Bind(id, 7);
        insert.Bind(v, buffer);
        buffer[0] = 99;   // SQLite copied the value when it was bound
        Assert.Equal(1, insert.Execute());
        Assert.Equal(0, insert.Execute());   // the same row again: nothing inserted

        insert.Bind(id, 8);
        insert.Bind(v, ReadOnlySpan<byte>.Empty);   // an empty BLOB, which the CHECK accepts, never NULL
        Assert.Equal(1, insert.Execute());

        Assert.Equal(new byte[] { 1, 2, 3 }, Scalar("SELECT v FROM t WHERE id = 7"));
        Assert.Equal(Array.Empty<byte>(), Scalar("SELECT v FROM t WHERE id = 8"));
    }

    [Fact]
    public void A_refused_row_raises_the_same_SqliteException_and_leaves_the_statement_usable()
    {
        using var insert = new SqliteRawStatement(_connection, "INSERT INTO t (id, v) VALUES ($id, $v)");
        int id = insert.Parameter("$id"), v = insert.Parameter("$v");
        insert.Bind(id, 1);
        insert.Bind(v, new byte[] { 1 });
        Assert.Equal(1, insert.Execute());

        var duplicate = Assert.Throws<SqliteException>(() => insert.Execute());
        Assert.Equal(19, duplicate.SqliteErrorCode);   // SQLITE_CONSTRAINT
        Assert.Contains("UNIQUE", duplicate.Message);

        insert.Bind(id, 2);
        Assert.Equal(1, insert.Execute());
        Assert.Equal(2L, Scalar("SELECT count(*) FROM t"));
    }

    [Fact]
    public void A_query_reads_its_row_in_place_and_runs_again_after_a_reset()
    {
        using var insert = new SqliteRawStatement(_connection, "INSERT INTO t (id, v) VALUES ($id, $v)");
        insert.Bind(insert.Parameter("$id"), 5);
        insert.Bind(insert.Parameter("$v"), new byte[] { 9, 8, 7 });
        insert.Execute();

        using var select = new SqliteRawStatement(_connection, "SELECT v, id, NULL FROM t WHERE id = $id");
        int id = select.Parameter("$id");
        select.Bind(id, 5);
        Assert.True(select.Read());
        Assert.True(select.IsBlob(0));
        Assert.False(select.IsBlob(1));
        Assert.False(select.IsBlob(2));
        Assert.Equal(new byte[] { 9, 8, 7 }, select.Blob(0).ToArray());
        Assert.Equal(5, select.Int64(1));
        select.Reset();

        select.Bind(id, 6);
        Assert.False(select.Read());
        select.Reset();
        select.Bind(id, 5);
        Assert.True(select.Read());   // the reset statement runs again
        select.Reset();
    }

    [Fact]
    public void A_parameter_the_statement_lacks_and_bad_SQL_are_refused_at_once()
    {
        using var insert = new SqliteRawStatement(_connection, "INSERT INTO t (id, v) VALUES ($id, $v)");
        Assert.Throws<ArgumentException>(() => insert.Parameter("$nope"));
        var bad = Assert.Throws<SqliteException>(() => new SqliteRawStatement(_connection, "INSERT INTO nowhere VALUES (1)"));
        Assert.Contains("nowhere", bad.Message);
    }

    private object? Scalar(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    public void Dispose()
    {
        _connection.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
