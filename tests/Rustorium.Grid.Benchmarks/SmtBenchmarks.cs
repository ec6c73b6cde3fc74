using BenchmarkDotNet.Attributes;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;
using Rustorium.Grid.Crypto.Smt;

namespace Rustorium.Grid.Benchmarks;

/// <summary>
/// Sparse Merkle tree at 100,000 leaves (building 1,000,000 takes minutes: `grid bench smt` does that one):
/// a single insert + delete pair (so the tree does not grow across iterations), proving, and verifying.
/// </summary>
[MemoryDiagnoser]
public class SmtBenchmarks
{
    private SparseMerkleTree _tree = null!;
    private Fr[] _present = [];
    private SmtProof[] _proofs = [];
    private Fr _fresh;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(11);
        _tree = new SparseMerkleTree();
        var changes = new SmtChange[100_000];
        for (int i = 0; i < changes.Length; i++) changes[i] = SmtChange.Insert(Random(rng), Random(rng));
        _tree.ApplyBatch(changes);
        _present = changes.Take(256).Select(c => c.Key).ToArray();
        _proofs = _present.Select(k => _tree.Prove(k)).ToArray();
        _fresh = Random(rng);
    }

    private static Fr Random(Random rng)
    {
        var b = new byte[32];
        rng.NextBytes(b);
        b[31] &= 0x1f;
        return Fr.FromBytesLittleEndian(b);
    }

    [Benchmark(Description = "insert+delete (2 single ops)")]
    public Fr InsertDelete()
    {
        _tree.Insert(_fresh, Fr.One);
        _tree.Delete(_fresh);
        return _tree.Root;
    }

    [Benchmark]
    public SmtProof Prove() => _tree.Prove(_present[_next++ & 255]);

    [Benchmark]
    public bool Verify() => SmtVerifier.Verify(_proofs[_next++ & 255], _tree.Root);

    [Benchmark]
    public int EncodedProofBytes() => _proofs[_next++ & 255].Encode().Length;
}

/// <summary>One-by-one Poseidon(2) against eight-lane batch hashing of the same 1,024 pairs.</summary>
public class PoseidonBatchBenchmarks
{
    private readonly Fr[] _inputs = new Fr[2048];
    private readonly Fr[] _outputs = new Fr[1024];

    [GlobalSetup]
    public void Setup()
    {
        for (int i = 0; i < _inputs.Length; i++) _inputs[i] = Fr.FromUInt64((ulong)i * 7919 + 3);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = 1024)]
    public void OneByOne()
    {
        for (int i = 0; i < _outputs.Length; i++) _outputs[i] = PoseidonHash.Hash(_inputs[2 * i], _inputs[2 * i + 1]);
    }

    [Benchmark(OperationsPerInvoke = 1024)]
    public void Batched() => PoseidonHash.HashMany(_inputs, 2, _outputs);
}
