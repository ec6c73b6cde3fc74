using System.Buffers.Binary;

namespace Rustorium.Grid.Crypto.Poseidon;

/// <summary>
/// circomlib's Poseidon parameters for one state width t = inputs + 1: 8 full rounds, the partial-round
/// count of circomlib's table, round constants C (t per round) and the t×t MDS matrix M.
/// </summary>
/// <remarks>
/// The constants are circomlib's, carried as data: <c>poseidon-constants.bin</c> is produced from
/// circomlibjs 0.1.7 <c>src/poseidon_constants.json</c> (which circomlib generated with the Poseidon
/// authors' <c>generate_parameters_grain.sage</c>) by <c>infra/tools/extract-poseidon-constants.mjs</c>.
/// </remarks>
internal sealed class PoseidonParameters
{
    public const int FullRounds = 8;
    public const int MinInputs = 1;
    public const int MaxInputs = 16;

    /// <summary>circomlib's partial rounds for t = 2..17.</summary>
    public static ReadOnlySpan<int> PartialRoundsByWidth => [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68];

    public int Width { get; }
    public int PartialRounds { get; }
    public int Rounds => FullRounds + PartialRounds;

    /// <summary>Round constants, C[r*t + i].</summary>
    public Fr[] RoundConstants { get; }

    /// <summary>MDS matrix row-major, M[i*t + j]; new[i] = Σ_j M[i][j]·state[j].</summary>
    public Fr[] Mds { get; }

    private PoseidonParameters(int width, int partialRounds, Fr[] c, Fr[] m)
    {
        Width = width;
        PartialRounds = partialRounds;
        RoundConstants = c;
        Mds = m;
    }

    private static readonly PoseidonParameters[] ByWidth = Load();

    /// <summary>The parameters for state width t (2..17).</summary>
    public static PoseidonParameters ForWidth(int t) => ByWidth[t - 2];

    private static PoseidonParameters[] Load()
    {
        using var stream = typeof(PoseidonParameters).Assembly.GetManifestResourceStream("Rustorium.Grid.Crypto.poseidon-constants.bin")
            ?? throw new InvalidOperationException("The Poseidon constants resource is missing from Rustorium.Grid.Crypto.");
        var data = new byte[stream.Length];
        stream.ReadExactly(data);
        var span = (ReadOnlySpan<byte>)data;

        if (!span[..4].SequenceEqual("RGPC"u8) || BinaryPrimitives.ReadUInt32LittleEndian(span[4..]) != 1)
            throw new InvalidOperationException("The Poseidon constants resource has an unknown format.");
        int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(span[8..]);
        int pos = 12;
        var result = new PoseidonParameters[count];
        for (int w = 0; w < count; w++)
        {
            int t = (int)BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]);
            int rp = (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(pos + 4)..]);
            pos += 8;
            if (t != w + 2 || rp != PartialRoundsByWidth[w])
                throw new InvalidOperationException($"The Poseidon constants resource is inconsistent at width {w + 2}.");
            var c = new Fr[t * (FullRounds + rp)];
            for (int i = 0; i < c.Length; i++, pos += 32) c[i] = Fr.FromBytesLittleEndian(span.Slice(pos, 32));
            var m = new Fr[t * t];
            for (int i = 0; i < m.Length; i++, pos += 32) m[i] = Fr.FromBytesLittleEndian(span.Slice(pos, 32));
            result[w] = new PoseidonParameters(t, rp, c, m);
        }
        if (pos != span.Length) throw new InvalidOperationException("The Poseidon constants resource has trailing data.");
        return result;
    }
}
