using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Rustorium.Grid.Crypto.Poseidon;

/// <summary>
/// Poseidon over the BN254 scalar field, bit-exact with circomlib's <c>Poseidon(n)</c> template and
/// circomlibjs's <c>poseidon</c> for 1 to 16 inputs (state width t = n + 1, initial state lane 0 = 0,
/// S-box x⁵, 8 full rounds, circomlib's partial rounds, output lane 0).
/// </summary>
/// <example><c>PoseidonHash.Hash(Fr.FromUInt64(1), Fr.FromUInt64(2))</c> =
/// 7853200120776062878684798364095072458815029376092732009249414926327459813530.</example>
[SkipLocalsInit]
public static class PoseidonHash
{
    /// <summary>Fewest inputs accepted.</summary>
    public const int MinInputs = PoseidonParameters.MinInputs;

    /// <summary>Most inputs accepted.</summary>
    public const int MaxInputs = PoseidonParameters.MaxInputs;

    /// <summary>Poseidon of one input.</summary>
    public static Fr Hash(in Fr a)
    {
        Span<Fr> s = stackalloc Fr[2];
        s[0] = Fr.Zero; s[1] = a;
        return Permute(PoseidonPlan.ForWidth(2), s);
    }

    /// <summary>Poseidon of two inputs (the sparse Merkle tree's inner node hash).</summary>
    public static Fr Hash(in Fr a, in Fr b)
    {
        Span<Fr> s = stackalloc Fr[3];
        s[0] = Fr.Zero; s[1] = a; s[2] = b;
        return Permute(PoseidonPlan.ForWidth(3), s);
    }

    /// <summary>Poseidon of three inputs (the sparse Merkle tree's leaf hash with c = 1).</summary>
    public static Fr Hash(in Fr a, in Fr b, in Fr c)
    {
        Span<Fr> s = stackalloc Fr[4];
        s[0] = Fr.Zero; s[1] = a; s[2] = b; s[3] = c;
        return Permute(PoseidonPlan.ForWidth(4), s);
    }

    /// <summary>Poseidon of 1 to 16 inputs.</summary>
    /// <exception cref="ArgumentException">Fewer than 1 or more than 16 inputs.</exception>
    public static Fr Hash(ReadOnlySpan<Fr> inputs)
    {
        if (inputs.Length < MinInputs || inputs.Length > MaxInputs)
            throw new ArgumentException($"Poseidon takes {MinInputs} to {MaxInputs} inputs; got {inputs.Length}.", nameof(inputs));
        int t = inputs.Length + 1;
        Span<Fr> s = stackalloc Fr[t];
        s[0] = Fr.Zero;
        inputs.CopyTo(s[1..]);
        return Permute(PoseidonPlan.ForWidth(t), s);
    }

    /// <summary>
    /// Hashes many inputs of the same arity: hash i is Poseidon(inputs[i·arity .. (i+1)·arity)), written to
    /// outputs[i]. Where the CPU has AVX-512 the hashes run eight at a time (several times the throughput of
    /// one-by-one hashing); elsewhere one by one. Results are identical either way.
    /// </summary>
    /// <exception cref="ArgumentException">Arity outside 1..16, or the spans' lengths do not match.</exception>
    public static void HashMany(ReadOnlySpan<Fr> inputs, int arity, Span<Fr> outputs)
    {
        if (arity < MinInputs || arity > MaxInputs)
            throw new ArgumentException($"Poseidon takes {MinInputs} to {MaxInputs} inputs; got arity {arity}.", nameof(arity));
        if (inputs.Length != outputs.Length * arity)
            throw new ArgumentException($"{outputs.Length} hashes of arity {arity} need {outputs.Length * arity} inputs; got {inputs.Length}.", nameof(inputs));

        int done = 0;
        if (FieldLanes.IsSupported && outputs.Length >= 2)
        {
            int t = arity + 1;
            var lanes = PoseidonLanes.ForWidth(t);
            var state = new Lanes[t];
            Span<Fr> column = stackalloc Fr[FieldLanes.Width];
            for (; done < outputs.Length; done += FieldLanes.Width)
            {
                int n = Math.Min(FieldLanes.Width, outputs.Length - done);
                state[0] = default;
                for (int i = 0; i < arity; i++)
                {
                    for (int lane = 0; lane < n; lane++) column[lane] = inputs[(done + lane) * arity + i];
                    FieldLanes.Load(column[..n], ref state[i + 1]);
                }
                lanes.Permute(state, out var result);
                FieldLanes.Store(result, outputs.Slice(done, n));
            }
            return;
        }
        for (; done < outputs.Length; done++) outputs[done] = Hash(inputs.Slice(done * arity, arity));
    }

    /// <summary>Runs the permutation in place and returns lane 0.</summary>
    private static Fr Permute(PoseidonPlan plan, Span<Fr> s)
    {
        int t = plan.Width;
        ref Fr c = ref MemoryMarshal.GetArrayDataReference(plan.Constants);
        ref Fr mds = ref MemoryMarshal.GetArrayDataReference(plan.Mds);
        Span<Fr> tmp = stackalloc Fr[t];

        AddVector(s, ref c);
        c = ref Unsafe.Add(ref c, t);

        // First half of the full rounds; the last of them multiplies by P instead of M.
        for (int r = 0; r < 3; r++)
        {
            SboxAll(s);
            MulMatrix(s, tmp, ref mds);
            AddVector(s, ref c);
            c = ref Unsafe.Add(ref c, t);
        }
        SboxAll(s);
        MulMatrix(s, tmp, ref MemoryMarshal.GetArrayDataReference(plan.PreSparse));
        s[0] += c;
        c = ref Unsafe.Add(ref c, 1);

        // Partial rounds: S-box on lane 0, a sparse matrix, a scalar constant.
        ref Fr sp = ref MemoryMarshal.GetArrayDataReference(plan.Sparse);
        int rp = plan.PartialRounds;
        for (int j = 0; j < rp; j++)
        {
            var s0 = s[0].Pow5();
            s[0] = s0;
            var acc = Fr.Dot(MemoryMarshal.CreateReadOnlySpan(ref sp, t), s);
            for (int k = 1; k < t; k++) s[k] += Unsafe.Add(ref sp, t + k - 1) * s0;
            sp = ref Unsafe.Add(ref sp, 2 * t - 1);
            if (j < rp - 1)
            {
                s[0] = acc + c;
                c = ref Unsafe.Add(ref c, 1);
            }
            else
            {
                s[0] = acc;
                AddVector(s, ref c);
                c = ref Unsafe.Add(ref c, t);
            }
        }

        // Second half of the full rounds; the last needs only lane 0 of its product.
        for (int r = 0; r < 3; r++)
        {
            SboxAll(s);
            MulMatrix(s, tmp, ref mds);
            AddVector(s, ref c);
            c = ref Unsafe.Add(ref c, t);
        }
        SboxAll(s);
        return Fr.Dot(MemoryMarshal.CreateReadOnlySpan(ref mds, t), s);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddVector(Span<Fr> s, ref Fr c)
    {
        for (int i = 0; i < s.Length; i++) s[i] += Unsafe.Add(ref c, i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SboxAll(Span<Fr> s)
    {
        for (int i = 0; i < s.Length; i++) s[i] = s[i].Pow5();
    }

    private static void MulMatrix(Span<Fr> s, Span<Fr> tmp, ref Fr m)
    {
        int t = s.Length;
        for (int i = 0; i < t; i++)
        {
            tmp[i] = Fr.Dot(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref m, i * t), t), s);
        }
        tmp.CopyTo(s);
    }
}
