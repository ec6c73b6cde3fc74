namespace Rustorium.Grid.Crypto.Poseidon;

/// <summary>
/// Maps an arbitrary byte string (a key or a value) to one field element with circomlib's Poseidon,
/// in a way any circomlibjs user can reproduce.
/// </summary>
/// <remarks>
/// <para><b>Definition.</b> Let L be the length in bytes. Cut the bytes into k = ⌈L/31⌉ chunks of 31
/// bytes (the last one zero-padded on the right to 31 bytes) and read each chunk as a big-endian
/// integer c₀..c_{k−1} (each &lt; 2^248 &lt; p, so no reduction ever happens). Then</para>
/// <list type="bullet">
/// <item>the first block is [L, c₀ … c₁₄] (the length followed by at most 15 chunks):
/// h = Poseidon(L, c₀, …) with as many inputs as that block has;</item>
/// <item>each further block of at most 15 chunks is absorbed as h = Poseidon(h, c_i, …).</item>
/// </list>
/// <para>The empty string hashes to Poseidon([0]); a 16-byte key to Poseidon([16, c₀]); a 100-byte value to
/// Poseidon([100, c₀, c₁, c₂, c₃]).</para>
/// <para><b>Why it is collision-resistant.</b> The encoding (L, c₀, c₁, …) is injective: L fixes k and the
/// padding, the chunks fix the bytes. L also fixes how many blocks there are and how wide each Poseidon
/// call is, so two different strings either differ in L (first block differs) or share the whole block
/// structure and differ in some chunk; walking back from the output, a collision of the chain is a
/// collision of Poseidon at some block (the Merkle–Damgård argument with the length in front).</para>
/// </remarks>
public static class PoseidonBytes
{
    /// <summary>Bytes per chunk: 31 bytes always fit below p (2^248 &lt; p).</summary>
    public const int ChunkSize = 31;

    /// <summary>Chunks absorbed per Poseidon call after the leading element.</summary>
    public const int ChunksPerBlock = 15;

    /// <summary>The field element of a byte string (see the type's remarks for the exact definition).</summary>
    public static Fr Hash(ReadOnlySpan<byte> data)
    {
        int chunks = (data.Length + ChunkSize - 1) / ChunkSize;
        Span<Fr> block = stackalloc Fr[ChunksPerBlock + 1];
        Span<byte> le = stackalloc byte[Fr.ByteLength];

        block[0] = Fr.FromUInt64((ulong)data.Length);
        int chunk = 0;
        do
        {
            int inBlock = Math.Min(ChunksPerBlock, chunks - chunk);
            for (int i = 0; i < inBlock; i++, chunk++)
            {
                var slice = data.Slice(chunk * ChunkSize, Math.Min(ChunkSize, data.Length - chunk * ChunkSize));
                // Big-endian 31-byte chunk, right-padded with zeros: byte j of the chunk has weight 256^(30-j).
                le.Clear();
                for (int j = 0; j < slice.Length; j++) le[ChunkSize - 1 - j] = slice[j];
                block[1 + i] = Fr.FromBytesLittleEndian(le);
            }
            block[0] = PoseidonHash.Hash(block[..(1 + inBlock)]);
        } while (chunk < chunks);
        return block[0];
    }
}
