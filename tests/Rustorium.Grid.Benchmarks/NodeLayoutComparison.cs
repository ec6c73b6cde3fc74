using System.Diagnostics;
using Microsoft.Data.Sqlite;

namespace Rustorium.Grid.Benchmarks;

/// <summary>
/// What a tree checkpoint's node rows cost in SQLite under two layouts, interleaved round by round in one process:
/// <b>by hash</b> (the store's <c>smt_nodes</c>: primary key (shard, hash); a changed node is a delete of the old hash and
/// an insert of the new one) and <b>by position</b> (primary key (shard, path bits, depth); a changed node is an update in
/// place, in key order). A model, not the store: node hashes and children are random bytes, the trees are the
/// compressed binary tries of random 256-bit keys (a middle node at every depth of a key's path down to where it
/// parts from its neighbours, as in the sparse Merkle tree), and a checkpoint changes every node on the paths of
/// <c>updated</c> random keys of each shard. Both files use the store's pragmas (WAL, synchronous=FULL, 16 MiB cache).
/// Run with <c>dotnet run -c Release --project tests/Rustorium.Grid.Benchmarks -- node-layout [keysPerShard] [updated] [rounds]</c>
/// (defaults 125,000 keys in each of 8 shards, 4,700 updated keys per shard and checkpoint, 4 rounds).
/// </summary>
public static class NodeLayoutComparison
{
    private const int Shards = 8;

    public static void Run(int keysPerShard, int updated, int rounds)
    {
        var dir = Directory.CreateTempSubdirectory("rustorium-node-layout-").FullName;
        try
        {
            var rng = new Random(2026);
            var trees = Enumerable.Range(0, Shards).Select(_ => Trie.Random(keysPerShard, rng)).ToArray();
            Console.WriteLine($"{Shards} shards x {keysPerShard:N0} keys: {trees.Sum(t => t.Positions.Count):N0} nodes; loading both layouts...");
            using var byHash = new Layout(Path.Combine(dir, "by-hash.db"), byPosition: false, trees, rng);
            using var byPosition = new Layout(Path.Combine(dir, "by-position.db"), byPosition: true, trees, rng);

            double hashSeconds = 0, positionSeconds = 0;
            long changed = 0;
            for (int round = 0; round < rounds; round++)
            {
                for (int shard = 0; shard < Shards; shard++)
                {
                    var positions = trees[shard].PathsOf(updated, rng);
                    changed += positions.Count;
                    // Alternate which layout goes first, so drift on a shared machine weighs on both alike.
                    bool hashFirst = (round + shard) % 2 == 0;
                    if (hashFirst) hashSeconds += byHash.Checkpoint(shard, positions, rng);
                    positionSeconds += byPosition.Checkpoint(shard, positions, rng);
                    if (!hashFirst) hashSeconds += byHash.Checkpoint(shard, positions, rng);
                }
                Console.WriteLine($"round {round + 1}/{rounds}: by hash {hashSeconds:F2} s, by position {positionSeconds:F2} s so far");
            }
            double keys = (double)rounds * Shards * updated;
            Console.WriteLine($"{changed / keys:F1} changed nodes per updated key");
            Console.WriteLine($"by hash (delete + insert): {1e6 * hashSeconds / keys:F1} us per updated key, {1e6 * hashSeconds / changed:F2} us per changed node");
            Console.WriteLine($"by position (update):      {1e6 * positionSeconds / keys:F1} us per updated key, {1e6 * positionSeconds / changed:F2} us per changed node");
            Console.WriteLine($"by hash / by position:     {hashSeconds / positionSeconds:F2}");
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The positions of one shard's trie: a key's path has a node at every depth down to its leaf.</summary>
    private sealed class Trie
    {
        private readonly byte[][] _keys;
        public List<byte[]> Positions { get; } = [];

        private Trie(byte[][] keys)
        {
            _keys = keys;
            var seen = new HashSet<string>();
            for (int i = 0; i < keys.Length; i++)
                foreach (var position in PathOf(i))
                    if (seen.Add(Convert.ToHexString(position))) Positions.Add(position);
        }

        public static Trie Random(int count, Random rng)
        {
            var keys = new byte[count][];
            for (int i = 0; i < count; i++) rng.NextBytes(keys[i] = new byte[32]);
            Array.Sort(keys, static (x, y) => x.AsSpan().SequenceCompareTo(y));
            return new Trie(keys);
        }

        /// <summary>The distinct positions on the paths of <paramref name="count"/> random keys.</summary>
        public List<byte[]> PathsOf(int count, Random rng)
        {
            var seen = new Dictionary<string, byte[]>();
            for (int u = 0; u < count; u++)
                foreach (var position in PathOf(rng.Next(_keys.Length)))
                    seen.TryAdd(Convert.ToHexString(position), position);
            return [.. seen.Values];
        }

        private IEnumerable<byte[]> PathOf(int i)
        {
            int leaf = 0;
            if (i > 0) leaf = Math.Max(leaf, CommonBits(_keys[i - 1], _keys[i]) + 1);
            if (i + 1 < _keys.Length) leaf = Math.Max(leaf, CommonBits(_keys[i], _keys[i + 1]) + 1);
            for (int depth = 0; depth <= leaf; depth++) yield return Position(_keys[i], depth);
        }

        private static bool Bit(byte[] key, int i) => (key[i >> 3] & (0x80 >> (i & 7))) != 0;

        private static int CommonBits(byte[] x, byte[] y)
        {
            int i = 0;
            while (i < 256 && Bit(x, i) == Bit(y, i)) i++;
            return i;
        }

        // The first `depth` bits, packed, then the depth: a subtree is one key range (but for its ancestors).
        private static byte[] Position(byte[] key, int depth)
        {
            var p = new byte[(depth + 7) / 8 + 1];
            for (int i = 0; i < depth; i++)
                if (Bit(key, i)) p[i >> 3] |= (byte)(0x80 >> (i & 7));
            p[^1] = (byte)depth;
            return p;
        }
    }

    private sealed class Layout : IDisposable
    {
        private readonly SqliteConnection _connection;
        private readonly bool _byPosition;
        private readonly Dictionary<string, byte[]>[] _hashOf;

        public Layout(string path, bool byPosition, Trie[] trees, Random rng)
        {
            _byPosition = byPosition;
            _connection = new SqliteConnection($"Data Source={path};Pooling=False");
            _connection.Open();
            Execute("PRAGMA journal_mode = WAL");
            Execute("PRAGMA synchronous = FULL");
            Execute("PRAGMA cache_size = -16384");
            Execute(byPosition
                ? "CREATE TABLE smt_nodes (shard_id INTEGER NOT NULL, pos BLOB NOT NULL, hash BLOB NOT NULL, kind INTEGER NOT NULL, a BLOB NOT NULL, b BLOB NOT NULL, PRIMARY KEY (shard_id, pos)) WITHOUT ROWID"
                : "CREATE TABLE smt_nodes (shard_id INTEGER NOT NULL, hash BLOB NOT NULL, kind INTEGER NOT NULL, a BLOB NOT NULL, b BLOB NOT NULL, PRIMARY KEY (shard_id, hash)) WITHOUT ROWID");
            _hashOf = new Dictionary<string, byte[]>[trees.Length];
            using var tx = _connection.BeginTransaction();
            using var insert = Insert(tx, out var parameters);
            for (int shard = 0; shard < trees.Length; shard++)
            {
                _hashOf[shard] = new Dictionary<string, byte[]>(trees[shard].Positions.Count);
                foreach (var position in trees[shard].Positions)
                {
                    var hash = Bytes(rng);
                    _hashOf[shard][Convert.ToHexString(position)] = hash;
                    Bind(parameters, shard, position, hash, rng);
                    insert.ExecuteNonQuery();
                }
            }
            tx.Commit();
            Execute("PRAGMA wal_checkpoint(TRUNCATE)");
        }

        /// <summary>Gives every node at <paramref name="positions"/> a new hash in one transaction; returns the seconds it took.</summary>
        public double Checkpoint(int shard, List<byte[]> positions, Random rng)
        {
            var hashes = _hashOf[shard];
            var work = positions.Select(p => (Position: p, Id: Convert.ToHexString(p), Hash: Bytes(rng))).ToList();
            long start = Stopwatch.GetTimestamp();
            using (var tx = _connection.BeginTransaction())
            {
                if (_byPosition)
                {
                    using var update = Command(tx, "UPDATE smt_nodes SET hash = $h, a = $a, b = $b WHERE shard_id = $s AND pos = $p",
                        out var parameters, "$s", "$p", "$h", "$a", "$b");
                    foreach (var (position, _, hash) in work.OrderBy(w => w.Id, StringComparer.Ordinal))
                    {
                        Bind(parameters, shard, position, hash, rng);
                        if (update.ExecuteNonQuery() != 1) throw new InvalidOperationException("A node position is missing.");
                    }
                }
                else
                {
                    using var delete = Command(tx, "DELETE FROM smt_nodes WHERE shard_id = $s AND hash = $h", out var del, "$s", "$h");
                    foreach (var (_, id, _) in work)
                    {
                        del[0].Value = shard;
                        del[1].Value = hashes[id];
                        delete.ExecuteNonQuery();
                    }
                    using var insert = Insert(tx, out var parameters);
                    foreach (var (position, _, hash) in work)
                    {
                        Bind(parameters, shard, position, hash, rng);
                        insert.ExecuteNonQuery();
                    }
                }
                tx.Commit();
            }
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            foreach (var (_, id, hash) in work) hashes[id] = hash;
            return seconds;
        }

        private SqliteCommand Insert(SqliteTransaction tx, out SqliteParameter[] parameters) => _byPosition
            ? Command(tx, "INSERT INTO smt_nodes VALUES ($s, $p, $h, 1, $a, $b)", out parameters, "$s", "$p", "$h", "$a", "$b")
            : Command(tx, "INSERT OR IGNORE INTO smt_nodes VALUES ($s, $h, 1, $a, $b)", out parameters, "$s", "$h", "$a", "$b");

        private void Bind(SqliteParameter[] parameters, int shard, byte[] position, byte[] hash, Random rng)
        {
            int i = 0;
            parameters[i++].Value = shard;
            if (_byPosition) parameters[i++].Value = position;
            parameters[i++].Value = hash;
            parameters[i++].Value = Bytes(rng);
            parameters[i].Value = Bytes(rng);
        }

        private SqliteCommand Command(SqliteTransaction tx, string sql, out SqliteParameter[] parameters, params string[] names)
        {
            var command = _connection.CreateCommand();
            command.Transaction = tx;
            command.CommandText = sql;
            parameters = names.Select(n => command.Parameters.Add(n, n == "$s" ? SqliteType.Integer : SqliteType.Blob)).ToArray();
            return command;
        }

        private void Execute(string sql)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = sql;
            command.ExecuteNonQuery();
        }

        private static byte[] Bytes(Random rng)
        {
            var b = new byte[32];
            rng.NextBytes(b);
            return b;
        }

        public void Dispose() => _connection.Dispose();
    }
}
