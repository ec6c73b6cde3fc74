using System.Globalization;
using System.Numerics;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Crypto.Tests.CrossCheck;

/// <summary>
/// A named sequence of tree operations for both trees, ours and circomlibjs's, with the keys to prove at
/// the end. Operations are mostly valid (the builder tracks which keys are present) with a share of
/// deliberately invalid ones, which both sides must reject without changing the tree.
/// </summary>
internal sealed class SmtScenario(string name, CrossCheckRandom random)
{
    private readonly Dictionary<BigInteger, BigInteger> _present = [];
    private readonly List<SmtReferenceOp> _ops = [];
    private readonly List<string> _prove = [];

    public string Name { get; } = name;

    public IReadOnlyList<SmtReferenceOp> Ops => _ops;

    public IReadOnlyList<string> Prove => _prove;

    /// <summary>Operation indexes after which a batch ends (batch scenarios only; the last op of each batch).</summary>
    public List<(int LastOp, BatchPlan Plan)> Batches { get; } = [];

    public int PresentCount => _present.Count;

    public bool IsPresent(BigInteger key) => _present.ContainsKey(key);

    public IEnumerable<BigInteger> PresentKeys => _present.Keys;

    public CrossCheckRandom Random { get; } = random;

    /// <summary>Values: mostly random elements (edges included), sometimes 0, sometimes the key's current value.</summary>
    public BigInteger Value(BigInteger key)
    {
        int r = Random.Random.Next(20);
        if (r == 0) return BigInteger.Zero;
        if (r == 1 && _present.TryGetValue(key, out var current)) return current;
        return Random.Element();
    }

    public void Add(string op, BigInteger key, BigInteger value)
    {
        switch (op)
        {
            case "insert" when !_present.ContainsKey(key):
            case "update" when _present.ContainsKey(key):
            case "upsert":
                _present[key] = value;
                break;
            case "delete" when _present.ContainsKey(key):
                _present.Remove(key);
                break;
        }
        _ops.Add(new SmtReferenceOp(op, Decimal(key), Decimal(value)));
    }

    /// <summary>
    /// One random operation on a key from <paramref name="pool"/>: with probability <paramref name="invalid"/>
    /// an invalid one (insert of a present key, update or delete of an absent one), otherwise a valid insert,
    /// update, delete or upsert, weighted by <paramref name="insertBias"/> (0..1; 0.5 keeps the size steady).
    /// </summary>
    public void RandomOp(IReadOnlyList<BigInteger> pool, double invalid = 0.05, double insertBias = 0.5)
    {
        var key = pool[Random.Random.Next(pool.Count)];
        bool present = _present.ContainsKey(key);
        double r = Random.Random.NextDouble();
        if (r < invalid)
        {
            if (present) Add("insert", key, Value(key));
            else Add(Random.Random.Next(2) == 0 ? "update" : "delete", key, Value(key));
            return;
        }
        if (!present)
        {
            // An absent key: insert it, or (to keep the size where the bias wants it) delete some present key.
            if (_present.Count > 0 && Random.Random.NextDouble() >= insertBias)
                Add("delete", _present.Keys.ElementAt(Random.Random.Next(_present.Count)), BigInteger.Zero);
            else
                Add(Random.Random.Next(6) == 0 ? "upsert" : "insert", key, Value(key));
            return;
        }
        double p = Random.Random.NextDouble();
        if (p >= insertBias) Add("delete", key, BigInteger.Zero);
        else if (p < insertBias * 2 / 3) Add("update", key, Value(key));
        else Add("upsert", key, Value(key));
    }

    /// <summary>Keys to prove at the end: some present, some absent from the pool, one never seen, and 0.</summary>
    public void ChooseProofs(IReadOnlyList<BigInteger> pool, int present = 6, int absent = 4)
    {
        var keys = new HashSet<BigInteger>();
        foreach (var k in _present.Keys.OrderBy(_ => Random.Random.Next()).Take(present)) keys.Add(k);
        foreach (var k in pool.Where(k => !_present.ContainsKey(k)).OrderBy(_ => Random.Random.Next()).Take(absent)) keys.Add(k);
        keys.Add(Random.Uniform());
        keys.Add(BigInteger.Zero);
        _prove.AddRange(keys.Select(Decimal));
    }

    public SmtReferenceCase ToReferenceCase(int nLevels) => new(_ops, _prove) { NLevels = nLevels };

    public static string Decimal(BigInteger value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>What the C# side does with one batch: apply it, or expect it to be rejected as a whole.</summary>
/// <param name="Changes">The batch as given to ApplyBatch (one change per key unless a duplicate is planted).</param>
/// <param name="ExpectedError">Null for a valid batch, else the error code the whole batch must fail with.</param>
internal sealed record BatchPlan(IReadOnlyList<(string Op, BigInteger Key, BigInteger Value)> Changes, SmtErrorCode? ExpectedError);

/// <summary>Key pools that make paths collide in the low bits, where the tree branches first.</summary>
internal static class SmtKeyPools
{
    /// <summary><paramref name="count"/> uniformly random keys.</summary>
    public static List<BigInteger> Uniform(CrossCheckRandom random, int count) =>
        Enumerable.Range(0, count).Select(_ => random.Uniform()).Distinct().ToList();

    /// <summary>
    /// Keys whose low <paramref name="bits"/> bits are one of <paramref name="patterns"/> random patterns
    /// (random high bits), so every path runs at least <paramref name="bits"/> levels deep in shared
    /// prefixes; a quarter of the keys are twins of another key differing in one bit a little higher up,
    /// which makes even longer shared prefixes.
    /// </summary>
    public static List<BigInteger> SharedLowBits(CrossCheckRandom random, int count, int bits, int patterns)
    {
        var mask = (BigInteger.One << bits) - 1;
        var lows = Enumerable.Range(0, patterns).Select(_ => random.Uniform() & mask).ToArray();
        var keys = new List<BigInteger>();
        var seen = new HashSet<BigInteger>();
        while (keys.Count < count)
        {
            BigInteger key;
            if (keys.Count > 0 && random.Random.Next(4) == 0)
                key = keys[random.Random.Next(keys.Count)] ^ (BigInteger.One << (bits + random.Random.Next(24)));
            else
                key = (random.Uniform() & ~mask) | lows[random.Random.Next(lows.Length)];
            if (key < Fr.Modulus && seen.Add(key)) keys.Add(key);
        }
        return keys;
    }

    /// <summary>
    /// Small integers, the edge values (0 and 2^253 share 253 low bits, so a tree holding both is as deep
    /// as a tree over BN254 gets; p−1 shares 28 low zero bits with 0), neighbours of p−1 and powers of two.
    /// </summary>
    public static List<BigInteger> Edges(CrossCheckRandom random)
    {
        var keys = new List<BigInteger>();
        for (int i = 0; i < 12; i++) keys.Add(i);
        keys.AddRange(CrossCheckRandom.Edges);
        for (int i = 3; i < 6; i++) keys.Add(Fr.Modulus - i);
        foreach (int e in new[] { 8, 16, 28, 100, 200, 252 }) keys.Add(BigInteger.One << e);
        keys.Add(random.Uniform());
        return keys.Distinct().ToList();
    }
}
