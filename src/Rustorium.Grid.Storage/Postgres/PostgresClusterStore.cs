using System.Text;
using Npgsql;
using NpgsqlTypes;
using Rustorium.Grid.Cluster;

namespace Rustorium.Grid.Storage.Postgres;

/// <summary>
/// The cluster store on PostgreSQL: the membership table (<see cref="IMembershipTable"/>), the shard directory
/// (<see cref="IShardDirectory"/>) and the grain directory (<see cref="IGrainDirectory"/>) in the grid's schema, over one
/// pooled <see cref="NpgsqlDataSource"/>. Open it with <see cref="OpenAsync"/>. See docs/membership.md.
/// </summary>
/// <remarks>
/// <para><b>Clock.</b> Every heartbeat, every heartbeat age and the dead-declaration condition use the database server's
/// clock, never the caller's, so silos whose clocks are skewed still agree on who is dead.</para>
/// <para><b>Fencing.</b> A shard's owner is on its row in <c>shards</c>, beside the epoch the shard store conditions
/// every commit on. A claim or release is one conditional UPDATE of that row that moves the epoch on; the map's
/// generation moves on in the same transaction. A silo that lost a shard therefore cannot commit to it any more.</para>
/// <para><b>Shard rows</b> are created by the shard store (<c>InitializeAsync</c>, splits, merges); the directory never
/// adds or removes shards, it only moves their ownership.</para>
/// <para><b>Grain directory.</b> A registration is a row of <c>grain_directory</c>; whether its silo is alive is decided
/// against <c>silos</c> in the same statement that reads or takes the row, so a registration to a silo that died is
/// free at once, without a clean-up having to run first. Rows are never deleted: an unregistered row keeps its epoch.</para>
/// <para>Thread-safe: every call takes a pooled connection of its own. Failures of the database are
/// <see cref="GridException"/>s: <see cref="GridErrorCode.Unavailable"/> when it cannot be reached or refuses the
/// connection, <see cref="GridErrorCode.Timeout"/> when a statement or the pool runs out of time. The caller's
/// cancellation surfaces as <see cref="OperationCanceledException"/>.</para>
/// </remarks>
public sealed class PostgresClusterStore : IMembershipTable, IShardDirectory, IGrainDirectory, IAsyncDisposable
{
    /// <summary>Longest endpoint, name, region or HTTP endpoint accepted, in characters.</summary>
    public const int MaxFieldLength = 1024;

    /// <summary>
    /// Longest grain id the grain directory accepts, in UTF-8 bytes of its string form (<see cref="GrainId.ToString"/>):
    /// the id is the table's B-tree key, and PostgreSQL refuses keys over about a third of a page (2,704 bytes).
    /// </summary>
    public const int MaxGrainIdBytes = 2048;

    /// <summary>How many times <see cref="RegisterAsync"/> tries again when the row it lost to was freed before it could read it.</summary>
    private const int MaxRegisterAttempts = 8;

    /// <summary>UTF-8 that throws on a lone surrogate (as Npgsql's writer does) instead of sending a replacement character.</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly NpgsqlDataSource _dataSource;
    private readonly string _store;

    private PostgresClusterStore(PostgresClusterStoreOptions options, NpgsqlDataSource dataSource, string store)
    {
        Options = options;
        _dataSource = dataSource;
        _store = store;
    }

    /// <summary>The options the store was opened with.</summary>
    public PostgresClusterStoreOptions Options { get; }

    /// <summary>
    /// Validates <paramref name="options"/>, connects, and creates or migrates the schema (every embedded script
    /// <c>Postgres/Sql/NNNN_*.sql</c>, under an advisory lock, so silos starting together migrate once).
    /// </summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for bad options;
    /// <see cref="GridErrorCode.Unavailable"/> if the server cannot be reached or refuses the credentials;
    /// <see cref="GridErrorCode.Timeout"/> if it does not answer in time; <see cref="GridErrorCode.Corrupted"/> if the
    /// schema was migrated by a newer build or from different scripts.</exception>
    public static async Task<PostgresClusterStore> OpenAsync(PostgresClusterStoreOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var store = options.Describe();
        var dataSource = new NpgsqlDataSourceBuilder(options.BuildConnectionString().ConnectionString).Build();
        try
        {
            await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
                await PostgresMigrator.MigrateAsync(connection, options.Schema, cancellationToken).ConfigureAwait(false);
            return new PostgresClusterStore(options, dataSource, store);
        }
        catch (Exception e)
        {
            await dataSource.DisposeAsync().ConfigureAwait(false);
            if (PostgresClusterErrors.IsStoreFailure(e)) throw PostgresClusterErrors.Map(e, store, "Opening the cluster store");
            throw;
        }
    }

    /// <summary>Closes the store's connections. Calls after disposal throw <see cref="ObjectDisposedException"/>.</summary>
    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    /// <inheritdoc />
    public override string ToString() => _store;

    // ================================================================ membership

    /// <inheritdoc />
    public Task<SiloEntry> JoinAsync(SiloRegistration registration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registration);
        var address = registration.Address;
        CheckAddress(address, "Join");
        CheckField(registration.Name, "name", "Join", allowNull: false);
        CheckField(registration.Region, "region", "Join", allowNull: false);
        CheckField(registration.HttpEndpoint, "HTTP endpoint", "Join", allowNull: true);

        return RunAsync($"Joining {address}", async ct =>
        {
            await using var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
            await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            await using (var lockEndpoint = Command(connection, tx, PostgresClusterStatements.LockEndpoint))
            {
                lockEndpoint.Parameters.AddWithValue("endpoint", address.Endpoint);
                await lockEndpoint.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            await using (var later = Command(connection, tx, PostgresClusterStatements.SameOrLaterGeneration))
            {
                AddAddress(later, address);
                if (await later.ExecuteScalarAsync(ct).ConfigureAwait(false) is long existing)
                    throw new GridException(GridErrorCode.Conflict, existing == address.Generation
                        ? $"Silo {address} is already in the membership table: a start needs a new generation."
                        : $"Silo {address} cannot join: generation {existing} on {address.Endpoint} is later (a newer start already joined).");
            }
            await using (var supersede = Command(connection, tx, PostgresClusterStatements.SupersedeEarlierGenerations))
            {
                AddAddress(supersede, address);
                await supersede.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            SiloEntry entry;
            await using (var insert = Command(connection, tx, PostgresClusterStatements.InsertSilo))
            {
                AddAddress(insert, address);
                insert.Parameters.AddWithValue("name", registration.Name);
                insert.Parameters.AddWithValue("region", registration.Region);
                insert.Parameters.Add(new NpgsqlParameter("http_endpoint", NpgsqlDbType.Text) { Value = (object?)registration.HttpEndpoint ?? DBNull.Value });
                await using var reader = await insert.ExecuteReaderAsync(ct).ConfigureAwait(false);
                await reader.ReadAsync(ct).ConfigureAwait(false);
                entry = ReadSilo(reader);
            }
            await tx.CommitAsync(ct).ConfigureAwait(false);
            return entry;
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<bool> HeartbeatAsync(SiloAddress silo, CancellationToken cancellationToken)
    {
        CheckAddress(silo, "Heartbeat");
        return UpdateSiloAsync($"Heartbeat of {silo}", PostgresClusterStatements.Heartbeat, silo, _ => { }, cancellationToken);
    }

    /// <inheritdoc />
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for a negative or non-finite rate or a
    /// negative activation count.</exception>
    public Task<bool> HeartbeatAsync(SiloAddress silo, SiloLoad load, CancellationToken cancellationToken)
    {
        CheckAddress(silo, "Heartbeat");
        if (!double.IsFinite(load.OpsPerSecond) || load.OpsPerSecond < 0 || load.Activations < 0)
            throw GridException.InvalidArgument($"A silo's load is a finite rate and a count, neither negative; got {load.OpsPerSecond} ops/s and {load.Activations} activations.");
        return UpdateSiloAsync($"Heartbeat of {silo}", PostgresClusterStatements.HeartbeatWithLoad, silo, command =>
        {
            command.Parameters.Add(new NpgsqlParameter<double>("ops_per_second", NpgsqlTypes.NpgsqlDbType.Double) { TypedValue = load.OpsPerSecond });
            command.Parameters.Add(new NpgsqlParameter<int>("activations", NpgsqlTypes.NpgsqlDbType.Integer) { TypedValue = load.Activations });
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<SiloEntry>> ReadAllAsync(CancellationToken cancellationToken) =>
        RunAsync<IReadOnlyList<SiloEntry>>("Reading the membership table", async ct =>
        {
            await using var command = _dataSource.CreateCommand(PostgresClusterStatements.SelectSilos);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            var entries = new List<SiloEntry>();
            while (await reader.ReadAsync(ct).ConfigureAwait(false)) entries.Add(ReadSilo(reader));
            return entries;
        }, cancellationToken);

    /// <inheritdoc />
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for a negative <paramref name="heartbeatOlderThan"/>.</exception>
    public Task<bool> DeclareDeadAsync(SiloAddress silo, TimeSpan heartbeatOlderThan, CancellationToken cancellationToken)
    {
        CheckAddress(silo, "DeclareDead");
        if (heartbeatOlderThan < TimeSpan.Zero)
            throw GridException.InvalidArgument($"DeclareDead: the heartbeat age limit must not be negative; got {heartbeatOlderThan}.");
        return RunAsync($"Declaring {silo} dead", async ct =>
        {
            await using (var command = _dataSource.CreateCommand(PostgresClusterStatements.DeclareDead))
            {
                AddAddress(command, silo);
                command.Parameters.Add(new NpgsqlParameter("older_than", NpgsqlDbType.Interval) { Value = heartbeatOlderThan });
                if (await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) != 1) return false;
            }
            // The silo may be frozen mid-commit holding a shard row's lock: end its sessions so its new owner can claim it.
            await using (var terminate = _dataSource.CreateCommand(PostgresClusterStatements.TerminateSessions))
            {
                terminate.Parameters.AddWithValue("application_name", PostgresSessions.ApplicationNameFor(silo));
                await terminate.ExecuteScalarAsync(ct).ConfigureAwait(false);
            }
            return true;
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<bool> SetStatusAsync(SiloAddress silo, SiloStatus status, CancellationToken cancellationToken)
    {
        CheckAddress(silo, "SetStatus");
        if (status is not (SiloStatus.ShuttingDown or SiloStatus.Dead))
            throw GridException.InvalidArgument(status == SiloStatus.Active
                ? $"SetStatus: a silo becomes Active only by joining; {silo} cannot be set Active."
                : $"SetStatus: {(int)status} is not a SiloStatus a silo can move to (ShuttingDown or Dead).");
        return UpdateSiloAsync($"Setting {silo} {status}", PostgresClusterStatements.SetStatus, silo,
            command => command.Parameters.Add(new NpgsqlParameter("status", NpgsqlDbType.Smallint) { Value = (short)status }),
            cancellationToken);
    }

    private Task<bool> UpdateSiloAsync(string operation, string sql, SiloAddress silo, Action<NpgsqlCommand> bind, CancellationToken cancellationToken) =>
        RunAsync(operation, async ct =>
        {
            await using var command = _dataSource.CreateCommand(sql);
            AddAddress(command, silo);
            bind(command);
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
        }, cancellationToken);

    private static SiloEntry ReadSilo(NpgsqlDataReader reader) => new(
        new SiloAddress(reader.GetString(0), reader.GetInt64(1)),
        reader.GetString(2),
        reader.GetString(3),
        reader.IsDBNull(4) ? null : reader.GetString(4),
        (SiloStatus)reader.GetInt16(5),
        reader.GetFieldValue<DateTimeOffset>(6),
        reader.GetFieldValue<DateTimeOffset>(7),
        reader.GetFieldValue<TimeSpan>(8))
    {
        Load = new SiloLoad(reader.GetDouble(9), reader.GetInt32(10)),
    };

    // ================================================================ shard directory

    /// <inheritdoc />
    public Task<ShardDirectorySnapshot> ReadAsync(CancellationToken cancellationToken) =>
        RunAsync("Reading the shard map", async ct =>
        {
            await using var command = _dataSource.CreateCommand(PostgresClusterStatements.SelectMap);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            long generation = 0;
            var shards = new List<ShardOwnership>();
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                generation = reader.GetInt64(0);
                if (!reader.IsDBNull(1)) shards.Add(ReadShard(reader, offset: 1));
            }
            return new ShardDirectorySnapshot(generation, shards);
        }, cancellationToken);

    /// <inheritdoc />
    public Task<ShardOwnership> GetAsync(long shardId, CancellationToken cancellationToken) =>
        RunAsync($"Reading shard {shardId}'s owner", async ct =>
            await TryGetAsync(shardId, ct).ConfigureAwait(false) ?? throw UnknownShard(shardId), cancellationToken);

    /// <inheritdoc />
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for a negative epoch or an address with a
    /// blank endpoint or a generation that is not positive.</exception>
    public Task<ShardOwnership> ClaimAsync(long shardId, SiloAddress newOwner, long expectedEpoch, CancellationToken cancellationToken)
    {
        CheckAddress(newOwner, "Claim");
        CheckEpoch(expectedEpoch, "Claim");
        return RunAsync($"Claiming shard {shardId} for {newOwner}", async ct =>
        {
            await using var command = _dataSource.CreateCommand(PostgresClusterStatements.Claim);
            command.Parameters.AddWithValue("id", shardId);
            command.Parameters.AddWithValue("epoch", expectedEpoch);
            command.Parameters.AddWithValue("owner_endpoint", newOwner.Endpoint);
            command.Parameters.AddWithValue("owner_generation", newOwner.Generation);
            return await SingleOrNullAsync(command, ct).ConfigureAwait(false)
                ?? throw await LostAsync(shardId, $"Claiming shard {shardId} for {newOwner} at epoch {expectedEpoch}", ct).ConfigureAwait(false);
        }, cancellationToken);
    }

    /// <inheritdoc />
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for a negative epoch or an address with a
    /// blank endpoint or a generation that is not positive.</exception>
    public Task<ShardOwnership> ReleaseAsync(long shardId, SiloAddress owner, long epoch, CancellationToken cancellationToken)
    {
        CheckAddress(owner, "Release");
        CheckEpoch(epoch, "Release");
        return RunAsync($"Releasing shard {shardId} by {owner}", async ct =>
        {
            await using var command = _dataSource.CreateCommand(PostgresClusterStatements.Release);
            command.Parameters.AddWithValue("id", shardId);
            command.Parameters.AddWithValue("epoch", epoch);
            command.Parameters.AddWithValue("owner_endpoint", owner.Endpoint);
            command.Parameters.AddWithValue("owner_generation", owner.Generation);
            return await SingleOrNullAsync(command, ct).ConfigureAwait(false)
                ?? throw await LostAsync(shardId, $"Releasing shard {shardId} by {owner} at epoch {epoch}", ct).ConfigureAwait(false);
        }, cancellationToken);
    }

    /// <summary>
    /// The error for a conditional update that matched no row: the shard is unknown, or its row moved on. The row is read
    /// again in a new statement (a new snapshot), so the message names the owner and epoch that won, not the ones the
    /// failed update started from.
    /// </summary>
    private async Task<GridException> LostAsync(long shardId, string attempt, CancellationToken ct)
    {
        var current = await TryGetAsync(shardId, ct).ConfigureAwait(false);
        if (current is null) return UnknownShard(shardId);
        return new GridException(GridErrorCode.Conflict,
            $"{attempt} lost: shard {shardId} is now {(current.Owner is { } owner ? $"owned by {owner}" : "without an owner")} at epoch {current.Epoch}. " +
            "Nothing was changed; re-read the shard and decide again.")
        {
            OwnerHint = current.Owner is { } o ? new OwnerHint(shardId, o.Endpoint, current.Epoch) : null,
        };
    }

    private async Task<ShardOwnership?> TryGetAsync(long shardId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(PostgresClusterStatements.SelectShard);
        command.Parameters.AddWithValue("id", shardId);
        return await SingleOrNullAsync(command, ct).ConfigureAwait(false);
    }

    private static async Task<ShardOwnership?> SingleOrNullAsync(NpgsqlCommand command, CancellationToken ct)
    {
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await reader.ReadAsync(ct).ConfigureAwait(false) ? ReadShard(reader, offset: 0) : null;
    }

    /// <summary>Reads <c>id, range_start, range_end, owner_endpoint, owner_generation, epoch, version, key_count</c> from column <paramref name="offset"/>.</summary>
    private static ShardOwnership ReadShard(NpgsqlDataReader reader, int offset)
    {
        var start = reader.GetFieldValue<byte[]>(offset + 1);
        var end = reader.IsDBNull(offset + 2) ? null : reader.GetFieldValue<byte[]>(offset + 2);
        SiloAddress? owner = reader.IsDBNull(offset + 3) ? null : new SiloAddress(reader.GetString(offset + 3), reader.GetInt64(offset + 4));
        return new ShardOwnership(reader.GetInt64(offset), new KeyRange(start, end), owner,
            reader.GetInt64(offset + 5), reader.GetInt64(offset + 6), reader.GetInt64(offset + 7));
    }

    private static GridException UnknownShard(long shardId) =>
        new(GridErrorCode.UnknownShard, $"Shard {shardId} is not in the shard map; refresh the map (ReadAsync) and route again.");

    // ================================================================ grain directory

    /// <inheritdoc />
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for a default grain id or one this store
    /// cannot hold (a NUL character, a lone surrogate, more than <see cref="MaxGrainIdBytes"/> bytes of UTF-8).</exception>
    public Task<GrainDirectoryEntry?> LookupAsync(GrainId grain, CancellationToken cancellationToken)
    {
        var key = GrainKey(grain, "Lookup");
        return RunAsync($"Looking up grain {key}", async ct =>
        {
            await using var command = _dataSource.CreateCommand(PostgresClusterStatements.LookupGrain);
            command.Parameters.AddWithValue("grain", key);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            return await reader.ReadAsync(ct).ConfigureAwait(false) ? ReadGrain(reader) : null;
        }, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// One upsert (<c>INSERT … ON CONFLICT DO UPDATE … WHERE</c> the row is free) decides. When it leaves the row to its
    /// holder, the row is read in a new statement and its holder returned; should that holder have died or unregistered in
    /// between (the row is free again), the upsert runs again, up to eight times in all.
    /// </remarks>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for a default grain id or one this store
    /// cannot hold (a NUL character, a lone surrogate, more than <see cref="MaxGrainIdBytes"/> bytes of UTF-8), or an address
    /// with a blank endpoint or a generation that is not positive;
    /// <see cref="GridErrorCode.Unavailable"/> if the registration changed hands between every attempt (nothing was
    /// registered to <paramref name="silo"/>; retry).</exception>
    public Task<GrainDirectoryEntry> RegisterAsync(GrainId grain, SiloAddress silo, CancellationToken cancellationToken)
    {
        var key = GrainKey(grain, "Register");
        CheckAddress(silo, "Register");
        return RunAsync($"Registering grain {key} to {silo}", async ct =>
        {
            for (int attempt = 1; attempt <= MaxRegisterAttempts; attempt++)
            {
                await using (var register = _dataSource.CreateCommand(PostgresClusterStatements.RegisterGrain))
                {
                    register.Parameters.AddWithValue("grain", key);
                    AddAddress(register, silo);
                    await using var reader = await register.ExecuteReaderAsync(ct).ConfigureAwait(false);
                    if (await reader.ReadAsync(ct).ConfigureAwait(false)) return ReadGrain(reader);
                }
                await using (var holder = _dataSource.CreateCommand(PostgresClusterStatements.SelectGrainHolder))
                {
                    holder.Parameters.AddWithValue("grain", key);
                    await using var reader = await holder.ExecuteReaderAsync(ct).ConfigureAwait(false);
                    if (await reader.ReadAsync(ct).ConfigureAwait(false) && !reader.IsDBNull(1))
                    {
                        var entry = ReadGrain(reader);
                        // This incarnation's own registration stands whatever the table says of it: the upsert left it unchanged.
                        if (entry.Silo == silo || reader.GetBoolean(4)) return entry;
                    }
                }
            }
            throw new GridException(GridErrorCode.Unavailable,
                $"Registering grain {key} to {silo}: the registration changed hands {MaxRegisterAttempts} times while it was being decided. " +
                "Nothing was registered to this silo; retry.");
        }, cancellationToken);
    }

    /// <inheritdoc />
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for a default grain id or one this store
    /// cannot hold, a negative epoch, or an address with a blank endpoint or a generation that is not positive.</exception>
    public Task<bool> UnregisterAsync(GrainId grain, SiloAddress silo, long epoch, CancellationToken cancellationToken)
    {
        var key = GrainKey(grain, "Unregister");
        CheckAddress(silo, "Unregister");
        CheckEpoch(epoch, "Unregister");
        return RunAsync($"Unregistering grain {key} from {silo}", async ct =>
        {
            await using var command = _dataSource.CreateCommand(PostgresClusterStatements.UnregisterGrain);
            command.Parameters.AddWithValue("grain", key);
            AddAddress(command, silo);
            command.Parameters.AddWithValue("epoch", epoch);
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
        }, cancellationToken);
    }

    /// <inheritdoc />
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for an address with a blank endpoint or a
    /// generation that is not positive.</exception>
    public Task<int> UnregisterSiloAsync(SiloAddress silo, CancellationToken cancellationToken)
    {
        CheckAddress(silo, "UnregisterSilo");
        return RunAsync($"Unregistering every grain of {silo}", async ct =>
        {
            await using var command = _dataSource.CreateCommand(PostgresClusterStatements.UnregisterSilo);
            AddAddress(command, silo);
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<GrainDirectoryEntry>> ListAsync(CancellationToken cancellationToken) =>
        RunAsync<IReadOnlyList<GrainDirectoryEntry>>("Listing the grain directory", async ct =>
        {
            await using var command = _dataSource.CreateCommand(PostgresClusterStatements.ListGrains);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            var rows = new List<(string Key, GrainDirectoryEntry Entry)>();
            while (await reader.ReadAsync(ct).ConfigureAwait(false)) rows.Add((reader.GetString(0), ReadGrain(reader)));
            // The server orders by UTF-8 bytes, i.e. by code point; .NET's ordinal order is by UTF-16 code unit. The two
            // differ only between U+E000..U+FFFF and the characters beyond U+FFFF, so this sort of an (almost always)
            // sorted list keeps the contract exact at no real cost.
            rows.Sort((x, y) => string.CompareOrdinal(x.Key, y.Key));
            return rows.ConvertAll(row => row.Entry);
        }, cancellationToken);

    /// <summary>Reads <c>grain, silo_endpoint, silo_generation, epoch</c> of a registered row.</summary>
    private static GrainDirectoryEntry ReadGrain(NpgsqlDataReader reader)
    {
        var key = reader.GetString(0);
        if (!GrainId.TryParse(key, out var grain))
            throw new GridException(GridErrorCode.Corrupted, $"The grain directory holds \"{key}\", which is not a grain id; the row was not written by the grid.");
        return new GrainDirectoryEntry(grain, new SiloAddress(reader.GetString(1), reader.GetInt64(2)), reader.GetInt64(3));
    }

    /// <summary>
    /// The grain's key in <c>grain_directory</c>: its string form. Refuses (<see cref="GridErrorCode.InvalidArgument"/>) the
    /// default id, and ids PostgreSQL cannot store as a key: a NUL character, a lone surrogate (not UTF-8), or more than
    /// <see cref="MaxGrainIdBytes"/> bytes of UTF-8.
    /// </summary>
    private static string GrainKey(GrainId grain, string operation)
    {
        if (grain.IsDefault) throw GridException.InvalidArgument($"{operation}: the default grain id names no grain.");
        var key = grain.ToString();
        int bytes;
        try
        {
            bytes = StrictUtf8.GetByteCount(key);
        }
        catch (EncoderFallbackException)
        {
            throw GridException.InvalidArgument($"{operation}: grain {grain.Type}'s key is not valid UTF-16 (a lone surrogate), so it cannot be stored.");
        }
        if (bytes > MaxGrainIdBytes)
            throw GridException.InvalidArgument($"{operation}: grain {grain.Type}'s id is {bytes} bytes of UTF-8; the directory holds at most {MaxGrainIdBytes}.");
        if (key.Contains('\0'))
            throw GridException.InvalidArgument($"{operation}: grain {grain.Type}'s key contains a NUL character, which PostgreSQL cannot store.");
        return key;
    }

    // ================================================================ shared

    private async Task<T> RunAsync<T>(string operation, Func<CancellationToken, Task<T>> body, CancellationToken cancellationToken)
    {
        try
        {
            return await body(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (PostgresClusterErrors.IsStoreFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            throw PostgresClusterErrors.Map(e, _store, operation);
        }
    }

    private static NpgsqlCommand Command(NpgsqlConnection connection, NpgsqlTransaction tx, string sql) => new(sql, connection, tx);

    private static void AddAddress(NpgsqlCommand command, SiloAddress address)
    {
        command.Parameters.AddWithValue("endpoint", address.Endpoint);
        command.Parameters.AddWithValue("generation", address.Generation);
    }

    private static void CheckAddress(SiloAddress address, string operation)
    {
        CheckField(address.Endpoint, "endpoint", operation, allowNull: false);
        if (address.Generation <= 0)
            throw GridException.InvalidArgument($"{operation}: a silo's generation must be positive; got {address.Generation} for {address.Endpoint}.");
    }

    private static void CheckField(string? value, string field, string operation, bool allowNull)
    {
        if (value is null && allowNull) return;
        if (string.IsNullOrWhiteSpace(value))
            throw GridException.InvalidArgument($"{operation}: the silo's {field} must not be blank{(allowNull ? " (leave it null for none)" : "")}.");
        if (value.Length > MaxFieldLength)
            throw GridException.InvalidArgument($"{operation}: the silo's {field} is {value.Length} characters; at most {MaxFieldLength} are allowed.");
        if (value.Contains('\0'))
            throw GridException.InvalidArgument($"{operation}: the silo's {field} contains a NUL character.");
    }

    private static void CheckEpoch(long epoch, string operation)
    {
        if (epoch < 0) throw GridException.InvalidArgument($"{operation}: an epoch is never negative; got {epoch}.");
    }
}
