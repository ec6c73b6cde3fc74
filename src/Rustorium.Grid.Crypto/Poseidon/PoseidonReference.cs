namespace Rustorium.Grid.Crypto.Poseidon;

/// <summary>
/// The textbook Poseidon permutation, round by round as circomlib's specification reads (add round
/// constants, S-box on all lanes in full rounds and on lane 0 in partial rounds, multiply by M).
/// Slow; kept as the yardstick the optimised <see cref="PoseidonHash"/> is tested against.
/// </summary>
internal static class PoseidonReference
{
    public static Fr Hash(ReadOnlySpan<Fr> inputs)
    {
        int t = inputs.Length + 1;
        var prm = PoseidonParameters.ForWidth(t);
        var state = new Fr[t];
        inputs.CopyTo(state.AsSpan(1));
        var next = new Fr[t];
        int half = PoseidonParameters.FullRounds / 2;
        for (int r = 0; r < prm.Rounds; r++)
        {
            for (int i = 0; i < t; i++) state[i] += prm.RoundConstants[r * t + i];
            bool full = r < half || r >= half + prm.PartialRounds;
            for (int i = 0; i < (full ? t : 1); i++) state[i] = state[i].Pow5();
            for (int i = 0; i < t; i++)
            {
                var sum = Fr.Zero;
                for (int j = 0; j < t; j++) sum += prm.Mds[i * t + j] * state[j];
                next[i] = sum;
            }
            (state, next) = (next, state);
        }
        return state[0];
    }
}
