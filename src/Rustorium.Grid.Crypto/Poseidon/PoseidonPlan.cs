namespace Rustorium.Grid.Crypto.Poseidon;

/// <summary>
/// An equivalent, cheaper form of circomlib's Poseidon permutation for one width, derived at start-up
/// from <see cref="PoseidonParameters"/> (the optimisation of the Poseidon paper's appendix B, as also
/// used by neptune and circomlibjs's poseidon_opt; derived here from C and M, not carried as data).
/// </summary>
/// <remarks>
/// Write the permutation over pre-S-box states: x₀ = in + c₀, x_{r+1} = L·S_r(x_r) + c_{r+1}.
/// <list type="number">
/// <item>Constants: in a partial round only lane 0 passes the S-box, so the lanes 1..t−1 of its constant
/// commute with it and are pushed forward through M into the next round's constant. Every partial round
/// is left with one scalar constant.</item>
/// <item>Matrices: factor A = G·F′ with F′ = diag(1, Â) (Â = A without row and column 0) and
/// G = [[A₀₀, w], [v, I]], w = A₀,₁..·Â⁻¹, v = A₁..,₀. F′ commutes with the partial S-box and with a
/// lane-0 constant, so it moves into the previous round's matrix (F′·M). Going backward from the last
/// partial round, every partial round gets a sparse G (2t−1 products instead of t²) and the last full
/// round before them gets P = F′·M.</item>
/// </list>
/// Tests check this form against the textbook permutation (<see cref="PoseidonReference"/>) for every width.
/// </remarks>
internal sealed class PoseidonPlan
{
    public int Width { get; }
    public int PartialRounds { get; }

    /// <summary>Constants in the order the permutation consumes them (t·8 + RP elements).</summary>
    public Fr[] Constants { get; }

    /// <summary>M row-major.</summary>
    public Fr[] Mds { get; }

    /// <summary>P = F′₀·M row-major: the linear layer of the last full round before the partial rounds.</summary>
    public Fr[] PreSparse { get; }

    /// <summary>Per partial round: [A₀₀, w₁..w_{t−1}, v₁..v_{t−1}] (2t−1 elements each).</summary>
    public Fr[] Sparse { get; }

    private static readonly PerWidth<PoseidonPlan> ByWidthCache = new(t => new PoseidonPlan(PoseidonParameters.ForWidth(t)));

    /// <summary>The plan for state width t (2..17), built once.</summary>
    public static PoseidonPlan ForWidth(int t) => ByWidthCache[t];

    private PoseidonPlan(PoseidonParameters prm)
    {
        int t = prm.Width, rp = prm.PartialRounds, half = PoseidonParameters.FullRounds / 2, rounds = prm.Rounds;
        Width = t;
        PartialRounds = rp;
        Mds = (Fr[])prm.Mds.Clone();
        var m = prm.Mds;

        // 1. Push the lanes 1..t-1 of every partial round's constant forward into the next round.
        var c = (Fr[])prm.RoundConstants.Clone();
        for (int r = half; r < half + rp; r++)
        {
            for (int i = 0; i < t; i++)
            {
                var sum = Fr.Zero;
                for (int j = 1; j < t; j++) sum += m[i * t + j] * c[r * t + j];
                c[(r + 1) * t + i] += sum;
            }
            for (int j = 1; j < t; j++) c[r * t + j] = Fr.Zero;
        }

        var packed = new List<Fr>(t * PoseidonParameters.FullRounds + rp);
        for (int r = 0; r < half; r++) packed.AddRange(c.AsSpan(r * t, t));
        for (int j = 0; j < rp; j++) packed.Add(c[(half + j) * t]);
        for (int r = half + rp; r < rounds; r++) packed.AddRange(c.AsSpan(r * t, t));
        Constants = packed.ToArray();

        // 2. Factor the partial rounds' matrices, from the last partial round backward.
        int n = t - 1;
        Sparse = new Fr[rp * (2 * t - 1)];
        var a = (Fr[])m.Clone();
        for (int j = rp - 1; j >= 0; j--)
        {
            var aHat = new Fr[n * n];
            for (int i = 0; i < n; i++)
                for (int k = 0; k < n; k++)
                    aHat[i * n + k] = a[(i + 1) * t + (k + 1)];
            var aHatInv = Invert(aHat, n);

            int o = j * (2 * t - 1);
            Sparse[o] = a[0];
            for (int k = 0; k < n; k++)
            {
                var w = Fr.Zero;
                for (int l = 0; l < n; l++) w += a[l + 1] * aHatInv[l * n + k];
                Sparse[o + 1 + k] = w;
                Sparse[o + t + k] = a[(k + 1) * t];
            }

            // A ← F′·M with F′ = diag(1, Â).
            var next = new Fr[t * t];
            for (int col = 0; col < t; col++)
            {
                next[col] = m[col];
                for (int i = 0; i < n; i++)
                {
                    var sum = Fr.Zero;
                    for (int l = 0; l < n; l++) sum += aHat[i * n + l] * m[(l + 1) * t + col];
                    next[(i + 1) * t + col] = sum;
                }
            }
            a = next;
        }
        PreSparse = a;
    }

    /// <summary>Gauss–Jordan inverse of an n×n matrix (row-major).</summary>
    private static Fr[] Invert(Fr[] matrix, int n)
    {
        var a = (Fr[])matrix.Clone();
        var inv = new Fr[n * n];
        for (int i = 0; i < n; i++) inv[i * n + i] = Fr.One;
        for (int col = 0; col < n; col++)
        {
            int pivot = col;
            while (pivot < n && a[pivot * n + col].IsZero) pivot++;
            if (pivot == n) throw new InvalidOperationException("Poseidon matrix is singular; the constants are corrupt.");
            if (pivot != col)
            {
                for (int k = 0; k < n; k++)
                {
                    (a[col * n + k], a[pivot * n + k]) = (a[pivot * n + k], a[col * n + k]);
                    (inv[col * n + k], inv[pivot * n + k]) = (inv[pivot * n + k], inv[col * n + k]);
                }
            }
            var f = a[col * n + col].Inverse();
            for (int k = 0; k < n; k++)
            {
                a[col * n + k] *= f;
                inv[col * n + k] *= f;
            }
            for (int row = 0; row < n; row++)
            {
                if (row == col || a[row * n + col].IsZero) continue;
                var g = a[row * n + col];
                for (int k = 0; k < n; k++)
                {
                    a[row * n + k] -= g * a[col * n + k];
                    inv[row * n + k] -= g * inv[col * n + k];
                }
            }
        }
        return inv;
    }
}
