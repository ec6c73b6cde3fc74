using System.CommandLine;
using System.Globalization;
using System.Net.Sockets;
using Rustorium.Grid.Cli.Admin;
using Rustorium.Grid.Cli.Help;
using Rustorium.Grid.Cluster;
using Rustorium.Grid.Runtime.Remoting;

namespace Rustorium.Grid.Cli.Commands;

/// <summary>
/// <c>grid admin</c>: operating a cluster on PostgreSQL. <c>migrate</c> and <c>members</c> talk to the database,
/// <c>move</c> to the silos (docs/cli.md, docs/placement.md).
/// </summary>
internal static class AdminCommand
{
    private const string ConnectionExample = "\"Host=127.0.0.1;Port=55432;Username=postgres;Database=grid\"";

    /// <summary>How often <c>move</c> follows the directory when the owner changed under it (a rebalance, a failover).</summary>
    private const int MoveAttempts = 3;

    public static Command Create(GridConsole console)
    {
        var admin = new GridCommand("admin", "Operate a cluster on PostgreSQL: migrate its schema, list its members, move, split and merge shards.")
        {
            Details = """
                migrate and members connect to the cluster's PostgreSQL database (--postgres, Npgsql connection string
                syntax; give a password through PGPASSWORD or a .pgpass file rather than on the command line).
                move talks to the silos, as put and get do (--endpoint).
                """,
            Examples =
            [
                $"grid admin migrate --postgres {ConnectionExample}",
                $"grid admin members --postgres {ConnectionExample}",
                "grid admin move 3 --to 127.0.0.1:7402 --endpoint 127.0.0.1:7401",
            ],
        };
        admin.Subcommands.Add(Migrate(console));
        admin.Subcommands.Add(Members(console));
        admin.Subcommands.Add(Move(console));
        admin.Subcommands.Add(Split(console));
        admin.Subcommands.Add(Merge(console));
        return admin;
    }

    private sealed record Database(Option<string> Postgres, Option<string> Schema, Option<bool> Json);

    private static Database AddDatabaseOptions(Command command)
    {
        var postgres = new Option<string>("--postgres")
        {
            Description = "The cluster's PostgreSQL connection string (Npgsql syntax: Host=…;Port=…;Username=…;Database=…).",
            HelpName = "connection-string",
            Required = true,
        };
        var schema = new Option<string>("--schema")
        {
            Description = "The schema of the grid's tables, as the silos' --schema. Default rgrid.",
            HelpName = "name",
            DefaultValueFactory = _ => "rgrid",
        };
        var json = new Option<bool>("--json") { Description = "Print JSON for scripts." };
        command.Options.Add(postgres);
        command.Options.Add(schema);
        command.Options.Add(json);
        return new Database(postgres, schema, json);
    }

    private static Command Migrate(GridConsole console)
    {
        var command = new GridCommand("migrate", "Bring the cluster's PostgreSQL schema up to date: apply the migrations it lacks.")
        {
            Details = """
                Runs the migration scripts this build embeds (the shard store's and the cluster store's tables) that the
                schema has not applied yet, in order, in one transaction under an advisory lock, as a starting silo does.
                Creates the schema if it does not exist. Running it again changes nothing ("up to date").
                Prints one line per migration applied and the schema's version; --json prints one object:
                  {"schema":"rgrid","database":"PostgreSQL 127.0.0.1:55432/grid schema rgrid","applied":["0001_shard_store",…],"version":2,"upToDate":false}
                """,
            Examples =
            [
                $"grid admin migrate --postgres {ConnectionExample}",
                $"grid admin migrate --postgres {ConnectionExample} --schema staging --json",
            ],
            ExitCodes =
            [
                (ExitCode.Ok, "the schema is up to date (migrations applied, or none needed)"),
                (ExitCode.BadInput, "a malformed connection string or schema name, or the server refused the statements"),
                (ExitCode.IoError, "the schema was migrated by a newer build or from different scripts: this build cannot use it"),
                (ExitCode.Unavailable, "PostgreSQL cannot be reached, refused the login, or has no such database"),
            ],
        };
        var options = AddDatabaseOptions(command);
        command.SetAction(async (parse, ct) =>
        {
            var database = ClusterDatabase.Parse(parse.GetValue(options.Postgres), parse.GetValue(options.Schema));
            var ran = await database.MigrateAsync(ct, line => console.Error.WriteLine(line)); // long steps on stderr: stdout stays one answer
            int version = Storage.Postgres.PostgresMigrator.LatestVersion;
            if (parse.GetValue(options.Json))
            {
                console.Out.WriteLine(JsonText.Object(w =>
                {
                    w.WriteString("schema", database.Schema);
                    w.WriteString("database", database.Description);
                    w.WriteStartArray("applied");
                    foreach (var m in ran) w.WriteStringValue(m.Name);
                    w.WriteEndArray();
                    w.WriteNumber("version", version);
                    w.WriteBoolean("upToDate", ran.Count == 0);
                }));
            }
            else if (ran.Count == 0)
            {
                console.Out.WriteLine($"up to date: {database.Description} is at version {version}");
            }
            else
            {
                foreach (var m in ran) console.Out.WriteLine($"applied {m.Name}");
                console.Out.WriteLine($"{database.Description} is now at version {version}");
            }
            return (int)ExitCode.Ok;
        });
        return command;
    }

    private static Command Members(GridConsole console)
    {
        var live = new Option<bool>("--live") { Description = "Only silos that are not dead (Active or ShuttingDown)." };
        var command = new GridCommand("members", "List the cluster's membership table: every silo incarnation, its status and heartbeat age.")
        {
            Details = """
                One row per start of a silo (a restart is a new generation; the old one is Dead), ordered by endpoint and
                generation. Status is Active, ShuttingDown (handing its shards over) or Dead (left, superseded, or declared
                dead after missed heartbeats). The heartbeat age is measured by the database's clock, the same clock the
                silos' failure detector uses. Reads only: a schema without a membership table is an error, not created.
                --json prints one object per silo:
                  {"address":"127.0.0.1:7401@1763…","endpoint":"127.0.0.1:7401","generation":1763…,"name":"silo-1","region":"local",
                   "httpEndpoint":"http://127.0.0.1:7481","status":"Active","joinedAt":"…","lastHeartbeat":"…","heartbeatAgeMs":412.5}
                """,
            Examples =
            [
                $"grid admin members --postgres {ConnectionExample}",
                $"grid admin members --postgres {ConnectionExample} --live --json",
            ],
            ExitCodes =
            [
                (ExitCode.Ok, "the table was listed (possibly empty)"),
                (ExitCode.BadInput, "a malformed connection string or schema name, or the schema has no membership table"),
                (ExitCode.IoError, "the schema was migrated by a newer build: this build cannot read it"),
                (ExitCode.Unavailable, "PostgreSQL cannot be reached, refused the login, or has no such database"),
            ],
        };
        command.Options.Add(live);
        var options = AddDatabaseOptions(command);
        command.SetAction(async (parse, ct) =>
        {
            var database = ClusterDatabase.Parse(parse.GetValue(options.Postgres), parse.GetValue(options.Schema));
            var members = (await database.ReadMembersAsync(ct)).Where(m => !parse.GetValue(live) || m.Status != SiloStatus.Dead).ToList();
            if (parse.GetValue(options.Json))
            {
                foreach (var m in members)
                {
                    console.Out.WriteLine(JsonText.Object(w =>
                    {
                        w.WriteString("address", m.Address.ToString());
                        w.WriteString("endpoint", m.Address.Endpoint);
                        w.WriteNumber("generation", m.Address.Generation);
                        w.WriteString("name", m.Name);
                        w.WriteString("region", m.Region);
                        w.WriteString("httpEndpoint", m.HttpEndpoint);
                        w.WriteString("status", m.Status.ToString());
                        w.WriteString("joinedAt", m.JoinedAt);
                        w.WriteString("lastHeartbeat", m.LastHeartbeat);
                        w.WriteNumber("heartbeatAgeMs", Math.Round(m.HeartbeatAge.TotalMilliseconds, 1));
                    }));
                }
                return (int)ExitCode.Ok;
            }
            if (members.Count == 0)
            {
                console.Error.WriteLine($"grid: {database.Description} lists no {(parse.GetValue(live) ? "live " : "")}silos.");
                return (int)ExitCode.Ok;
            }
            string[] header = ["ADDRESS", "NAME", "REGION", "STATUS", "HEARTBEAT"];
            var rows = members.Select(m => new[] { m.Address.ToString(), m.Name, m.Region, m.Status.ToString(), Age(m.HeartbeatAge) }).ToList();
            var widths = header.Select((h, i) => Math.Max(h.Length, rows.Max(r => r[i].Length))).ToArray();
            foreach (var row in rows.Prepend(header))
                console.Out.WriteLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))));
            return (int)ExitCode.Ok;
        });
        return command;
    }

    private static Command Move(GridConsole console)
    {
        var shard = new Argument<long>("shard-id") { Description = "The shard to move (an id from grid status)." };
        var to = new Option<string>("--to")
        {
            Description = "The silo to move it to: its grid endpoint as the shard map and grid admin members show it (host:port).",
            HelpName = "host:port",
            Required = true,
        };
        var endpoint = new Option<string[]>("--endpoint")
        {
            Description = "Any silo of the cluster, to read the shard map from. Default 127.0.0.1:7400 (or $RGRID_ENDPOINT).",
            HelpName = "host:port",
            AllowMultipleArgumentsPerToken = true,
        };
        var json = new Option<bool>("--json") { Description = "Print one JSON object, for scripts." };
        var command = new GridCommand("move", "Move a shard to another silo: its owner drains it, hands it over (epoch + 1) and the target opens it.")
        {
            Details = """
                Reads the shard map from --endpoint, then asks the shard's owner (its silo control grain) to hand the
                shard to --to, which must be an active member of the cluster. Requests in flight wait and are redirected;
                no acknowledged write is lost. If the owner changed meanwhile, the move follows it (up to 3 times).
                Prints "moved shard N: FROM -> TO, epoch E, version V, T ms"; a shard already on --to is not moved
                (exit 0). --json prints one object:
                  {"shard":3,"from":"127.0.0.1:7401","to":"127.0.0.1:7402","epoch":5,"version":12,"elapsedMs":18.2,"moved":true}
                The target keeps a moved shard at least Silo:Cluster:MoveCooldown (30 s) before rebalancing may move it
                again; with rebalancing on, the silos may later even out the load (docs/placement.md).
                """,
            Examples =
            [
                "grid admin move 3 --to 127.0.0.1:7402 --endpoint 127.0.0.1:7401",
                "grid status --endpoint 127.0.0.1:7401   # shows the new owner",
            ],
            ExitCodes =
            [
                (ExitCode.Ok, "the shard moved (or was already on --to)"),
                (ExitCode.BadInput, "no such shard, --to is not an active silo, or bad arguments"),
                (ExitCode.Unavailable, "no silo reachable, a move of the shard is already in progress, or the call timed out"),
            ],
        };
        command.Arguments.Add(shard);
        command.Options.Add(to);
        command.Options.Add(endpoint);
        command.Options.Add(json);
        command.SetAction((parse, ct) =>
        {
            long shardId = parse.GetValue(shard);
            var target = parse.GetValue(to)!.Trim();
            int colon = target.LastIndexOf(':');
            if (colon <= 0 || !ushort.TryParse(target.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out ushort port) || port == 0)
                throw GridCommandException.BadInput($"--to must be a silo endpoint host:port, e.g. 127.0.0.1:7402; got '{target}'.");
            return DataCommands.ConnectAndRunAsync(parse.GetValue(endpoint), async grid =>
            {
                var result = await MoveAsync(grid, shardId, target, ct);
                bool moved = result is not null;
                var entry = grid.ShardMap.Shards.First(s => s.ShardId == shardId);
                if (parse.GetValue(json))
                {
                    console.Out.WriteLine(JsonText.Object(w =>
                    {
                        w.WriteNumber("shard", shardId);
                        w.WriteString("from", result?.From ?? entry.Endpoint);
                        w.WriteString("to", result?.To ?? entry.Endpoint);
                        w.WriteNumber("epoch", result?.Epoch ?? entry.Epoch);
                        if (result is null) w.WriteNull("version"); else w.WriteNumber("version", result.Version);
                        w.WriteNumber("elapsedMs", Math.Round((result?.ElapsedMicroseconds ?? 0) / 1000.0, 1));
                        w.WriteBoolean("moved", moved);
                    }));
                }
                else if (result is null)
                {
                    console.Out.WriteLine($"shard {shardId} is already on {entry.Endpoint} (epoch {entry.Epoch}); nothing moved");
                }
                else
                {
                    console.Out.WriteLine(FormattableString.Invariant(
                        $"moved shard {shardId}: {result.From} -> {result.To}, epoch {result.Epoch}, version {result.Version}, {result.ElapsedMicroseconds / 1000.0:0.0} ms"));
                }
                return ExitCode.Ok;
            }, ct);
        });
        return command;
    }

    private static Command Split(GridConsole console)
    {
        var shard = new Argument<long>("shard-id") { Description = "The shard to split (an id from grid status)." };
        var (endpoint, json) = EndpointAndJson();
        var command = new GridCommand("split", "Split a shard in two at its median key; both halves stay on its owner.")
        {
            Details = """
                Asks the shard's owner (its silo control grain) to split it: requests in flight wait, the trees of both
                halves are rebuilt from their rows, and both halves are stored in one transaction under the shard's epoch.
                The left half keeps the id; the right half gets a new one. Prints both halves; --json prints
                  {"shards":[{"shard":3,"start":"40","end":"5a17…","epoch":2},{"shard":9,"start":"5a17…","end":"60","epoch":2}]}
                A shard with fewer than 2 keys cannot be split (exit 2).
                """,
            Examples = ["grid admin split 3 --endpoint 127.0.0.1:7401"],
            ExitCodes =
            [
                (ExitCode.Ok, "the shard was split"),
                (ExitCode.BadInput, "no such shard, or it holds fewer than 2 keys"),
                (ExitCode.Unavailable, "no silo reachable, or the shard is already moving, splitting or merging"),
            ],
        };
        command.Arguments.Add(shard);
        command.Options.Add(endpoint);
        command.Options.Add(json);
        command.SetAction((parse, ct) => DataCommands.ConnectAndRunAsync(parse.GetValue(endpoint), async grid =>
        {
            long shardId = parse.GetValue(shard);
            var halves = await OnOwnerAsync(grid, shardId, control => control.SplitShardAsync(shardId, ct), ct);
            PrintEntries(console, parse.GetValue(json), "split", halves);
            return ExitCode.Ok;
        }, ct));
        return command;
    }

    private static Command Merge(GridConsole console)
    {
        var shard = new Argument<long>("shard-id") { Description = "The left shard: it is merged with the shard right after it in key order." };
        var (endpoint, json) = EndpointAndJson();
        var command = new GridCommand("merge", "Merge a shard with its right neighbour; both must be on the same silo (grid admin move one first).")
        {
            Details = """
                Asks the shard's owner to merge it with the next shard in key order: requests in flight wait, one tree is
                rebuilt from both shards' rows, and the merge is stored in one transaction under both epochs. The merged
                shard keeps the left id. --json prints {"shards":[{"shard":3,"start":"40","end":"80","epoch":2}]}.
                """,
            Examples = ["grid admin merge 3 --endpoint 127.0.0.1:7401"],
            ExitCodes =
            [
                (ExitCode.Ok, "the shards were merged"),
                (ExitCode.BadInput, "no such shard, it is the last one, or its neighbour is on another silo"),
                (ExitCode.Unavailable, "no silo reachable, or a shard is already moving, splitting or merging"),
            ],
        };
        command.Arguments.Add(shard);
        command.Options.Add(endpoint);
        command.Options.Add(json);
        command.SetAction((parse, ct) => DataCommands.ConnectAndRunAsync(parse.GetValue(endpoint), async grid =>
        {
            long shardId = parse.GetValue(shard);
            var merged = await OnOwnerAsync(grid, shardId, async control => new[] { await control.MergeShardsAsync(shardId, ct) }, ct);
            PrintEntries(console, parse.GetValue(json), "merged into", merged);
            return ExitCode.Ok;
        }, ct));
        return command;
    }

    private static (Option<string[]> Endpoint, Option<bool> Json) EndpointAndJson() =>
    (
        new Option<string[]>("--endpoint")
        {
            Description = "Any silo of the cluster, to read the shard map from. Default 127.0.0.1:7400 (or $RGRID_ENDPOINT).",
            HelpName = "host:port",
            AllowMultipleArgumentsPerToken = true,
        },
        new Option<bool>("--json") { Description = "Print one JSON object, for scripts." }
    );

    private static void PrintEntries(GridConsole console, bool json, string verb, IReadOnlyList<ShardMapEntry> entries)
    {
        if (json)
        {
            console.Out.WriteLine(JsonText.Object(w =>
            {
                w.WriteStartArray("shards");
                foreach (var e in entries)
                {
                    w.WriteStartObject();
                    w.WriteNumber("shard", e.ShardId);
                    w.WriteString("start", Convert.ToHexStringLower(e.Range.Start));
                    if (e.Range.IsUnbounded) w.WriteNull("end"); else w.WriteString("end", Convert.ToHexStringLower(e.Range.End));
                    w.WriteString("silo", e.Endpoint);
                    w.WriteNumber("epoch", e.Epoch);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }));
            return;
        }
        console.Out.WriteLine($"{verb}: " + string.Join(", ", entries.Select(e => $"shard {e.ShardId} {e.Range} on {e.Endpoint} (epoch {e.Epoch})")));
    }

    /// <summary>Runs <paramref name="call"/> on the control grain of the shard's owner, following the owner if the map was stale.</summary>
    private static async Task<T> OnOwnerAsync<T>(Client.GridClient grid, long shardId, Func<ISiloControlGrain, Task<T>> call, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            var entry = grid.ShardMap.Shards.FirstOrDefault(s => s.ShardId == shardId)
                ?? throw GridCommandException.BadInput(
                    $"Shard {shardId} is not in the shard map; the shards are {string.Join(", ", grid.ShardMap.Shards.Select(s => s.ShardId))}.");
            try
            {
                await using var owner = await ConnectAsync(entry.Endpoint, ct);
                return await call(owner.GetGrain<ISiloControlGrain>(0));
            }
            catch (GridException e) when (attempt < MoveAttempts && e.Code == GridErrorCode.NotOwner && e.OwnerHint?.ShardId == shardId)
            {
                await grid.RefreshShardMapAsync(ct);
            }
            catch (GridException e) when (e.Code == GridErrorCode.NotOwner)
            {
                throw GridCommandException.BadInput($"{e.Message} Move the shards onto one silo first (grid admin move).");
            }
            catch (GridException e) when (e.Code == GridErrorCode.Conflict)
            {
                throw new GridCommandException(ExitCode.Unavailable, $"{e.Code}: {e.Message} Retry when it has finished.", e);
            }
        }
    }

    /// <summary>Asks the shard's owner to hand it to <paramref name="target"/>; null if it is there already.</summary>
    private static async Task<ShardMoveResult?> MoveAsync(Client.GridClient grid, long shardId, string target, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            var entry = grid.ShardMap.Shards.FirstOrDefault(s => s.ShardId == shardId)
                ?? throw GridCommandException.BadInput(
                    $"Shard {shardId} is not in the shard map; the shards are {string.Join(", ", grid.ShardMap.Shards.Select(s => s.ShardId))}.");
            if (entry.Endpoint == target) return null;
            try
            {
                await using var owner = await ConnectAsync(entry.Endpoint, ct);
                return await owner.GetGrain<ISiloControlGrain>(0).MoveShardAsync(shardId, target, ct);
            }
            catch (GridException e) when (attempt < MoveAttempts && e.Code == GridErrorCode.NotOwner)
            {
                // The map was stale (a rebalance or failover moved the shard since it was read): read it again, follow the owner.
                await grid.RefreshShardMapAsync(ct);
            }
            catch (GridException e) when (e.Code == GridErrorCode.Conflict)
            {
                throw new GridCommandException(ExitCode.Unavailable, $"{e.Code}: {e.Message} Retry when it has finished.", e);
            }
        }
    }

    private static async Task<GrainClient> ConnectAsync(string endpoint, CancellationToken ct)
    {
        if (!System.Net.IPEndPoint.TryParse(endpoint, out var address) || address.Port == 0)
            throw GridCommandException.BadInput($"The shard map names {endpoint} as the owner, which is not a numeric host:port this tool can connect to.");
        try
        {
            return await GrainClient.ConnectAsync(address, cancellationToken: ct);
        }
        catch (SocketException e)
        {
            throw new GridCommandException(ExitCode.Unavailable, $"Cannot reach the shard's owner {endpoint}: {e.Message}", e);
        }
    }

    private static string Age(TimeSpan age) => age.TotalSeconds < 60
        ? age.TotalSeconds.ToString("0.0 's'", CultureInfo.InvariantCulture)
        : age.ToString(age.TotalDays >= 1 ? @"d\.hh\:mm\:ss" : @"hh\:mm\:ss", CultureInfo.InvariantCulture);
}
