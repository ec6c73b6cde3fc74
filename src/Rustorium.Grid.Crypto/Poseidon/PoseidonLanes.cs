using System.Runtime.CompilerServices;

namespace Rustorium.Grid.Crypto.Poseidon;

/// <summary>
/// The optimised Poseidon permutation (<see cref="PoseidonPlan"/>) run on eight independent states at once
/// with <see cref="FieldLanes"/>. Same constants, same round structure as <see cref="PoseidonHash"/>.
/// </summary>
internal sealed class PoseidonLanes
{
    private readonly PoseidonPlan _plan;
    private readonly ulong[] _constants; // 9 lane-form limbs per constant, in consumption order
    private readonly ulong[] _mds;
    private readonly ulong[] _preSparse;
    private readonly ulong[] _sparse;

    private static readonly PerWidth<PoseidonLanes> ByWidthCache = new(t => new PoseidonLanes(PoseidonPlan.ForWidth(t)));

    /// <summary>The lane form for state width t (2..17), built once.</summary>
    public static PoseidonLanes ForWidth(int t) => ByWidthCache[t];

    private PoseidonLanes(PoseidonPlan plan)
    {
        _plan = plan;
        _constants = ToLaneLimbs(plan.Constants);
        _mds = ToLaneLimbs(plan.Mds);
        _preSparse = ToLaneLimbs(plan.PreSparse);
        _sparse = ToLaneLimbs(plan.Sparse);
    }

    private static ulong[] ToLaneLimbs(Fr[] values)
    {
        var result = new ulong[values.Length * FieldLanes.Limbs];
        for (int i = 0; i < values.Length; i++)
            FieldLanes.ToLaneLimbs(values[i]).CopyTo(result, i * FieldLanes.Limbs);
        return result;
    }

    private static ReadOnlySpan<ulong> Element(ulong[] table, int index) =>
        table.AsSpan(index * FieldLanes.Limbs, FieldLanes.Limbs);

    /// <summary>Permutes eight states (s[i] holds lane-form state element i of every lane); returns lane 0 of each in <paramref name="output"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // see FieldLanesKernels: tiering buys nothing here
    public void Permute(Span<Lanes> s, out Lanes output)
    {
        int t = _plan.Width;
        int c = 0;
        Span<Lanes> tmp = stackalloc Lanes[t];

        for (int i = 0; i < t; i++) FieldLanes.AddConstant(ref s[i], Element(_constants, c++));

        for (int r = 0; r < 4; r++)
        {
            for (int i = 0; i < t; i++) FieldLanes.Pow5(ref s[i]);
            MulMatrix(s, tmp, r < 3 ? _mds : _preSparse);
            if (r < 3)
                for (int i = 0; i < t; i++) FieldLanes.AddConstant(ref s[i], Element(_constants, c++));
        }
        FieldLanes.AddConstant(ref s[0], Element(_constants, c++));

        int rp = _plan.PartialRounds;
        for (int j = 0; j < rp; j++)
        {
            int o = j * (2 * t - 1);
            FieldLanes.Pow5(ref s[0]);
            var s0 = s[0];
            Dot(s, _sparse, o, out var mixed); // not `out s[0]`: Dot reads s[0]
            s[0] = mixed;
            var s0Only = new ReadOnlySpan<Lanes>(in s0);
            for (int k = 1; k < t; k++)
            {
                FieldLanesKernels.DotConstants(s0Only, _sparse, o + t + k - 1, 1, out var product);
                FieldLanes.Add(s[k], product, out s[k]);
            }
            if (j < rp - 1)
                FieldLanes.AddConstant(ref s[0], Element(_constants, c++));
            else
                for (int i = 0; i < t; i++) FieldLanes.AddConstant(ref s[i], Element(_constants, c++));
        }

        for (int r = 0; r < 4; r++)
        {
            for (int i = 0; i < t; i++) FieldLanes.Pow5(ref s[i]);
            if (r < 3)
            {
                MulMatrix(s, tmp, _mds);
                for (int i = 0; i < t; i++) FieldLanes.AddConstant(ref s[i], Element(_constants, c++));
            }
        }
        Dot(s, _mds, 0, out output);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MulMatrix(Span<Lanes> s, Span<Lanes> tmp, ulong[] matrix)
    {
        int t = s.Length;
        for (int i = 0; i < t; i++) Dot(s, matrix, i * t, out tmp[i]);
        tmp.CopyTo(s);
    }

    /// <summary>Σ_j table[first + j]·s[j], reduced once per group of <see cref="FieldLanes.MaxDotTerms"/> products.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot(ReadOnlySpan<Lanes> s, ulong[] table, int first, out Lanes result)
    {
        int t = s.Length;
        int count = Math.Min(t, FieldLanes.MaxDotTerms);
        FieldLanesKernels.DotConstants(s[..count], table, first, count, out result);
        for (int start = count; start < t; start += FieldLanes.MaxDotTerms)
        {
            count = Math.Min(t - start, FieldLanes.MaxDotTerms);
            FieldLanesKernels.DotConstants(s.Slice(start, count), table, first + start, count, out var part);
            FieldLanes.Add(result, part, out result);
        }
    }
}
