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

    /// <summary>
    /// <see cref="Hash"/> of many byte strings at once: strings of up to 15 chunks (465 bytes) are grouped by
    /// chunk count and hashed through <see cref="PoseidonHash.HashMany"/> (eight at a time with AVX-512);
    /// longer ones one by one. <c>output[i]</c> = <c>Hash(items[i])</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The output span is shorter than the item list.</exception>
    public static void HashMany(IReadOnlyList<byte[]> items, Span<Fr> output)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (output.Length < items.Count) throw new ArgumentException($"Need room for {items.Count} hashes; got {output.Length}.", nameof(output));

        // Group single-block items by width (1 + chunk count); everything else goes through Hash.
        var byChunks = new List<int>?[ChunksPerBlock + 1];
        for (int i = 0; i < items.Count; i++)
        {
            var data = items[i] ?? throw new ArgumentException($"Item {i} is null.", nameof(items));
            int chunks = (data.Length + ChunkSize - 1) / ChunkSize;
            if (chunks > ChunksPerBlock) { output[i] = Hash(data); continue; }
            (byChunks[chunks] ??= []).Add(i);
        }

        Span<byte> le = stackalloc byte[Fr.ByteLength];
        for (int chunks = 0; chunks <= ChunksPerBlock; chunks++)
        {
            var group = byChunks[chunks];
            if (group is null) continue;
            int arity = 1 + chunks;
            var inputs = new Fr[group.Count * arity];
            var hashes = new Fr[group.Count];
            for (int g = 0; g < group.Count; g++)
            {
                var data = items[group[g]];
                inputs[g * arity] = Fr.FromUInt64((ulong)data.Length);
                for (int c = 0; c < chunks; c++) inputs[g * arity + 1 + c] = Chunk(data, c, le);
            }
            PoseidonHash.HashMany(inputs, arity, hashes);
            for (int g = 0; g < group.Count; g++) output[group[g]] = hashes[g];
        }
    }

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
            for (int i = 0; i < inBlock; i++, chunk++) block[1 + i] = Chunk(data, chunk, le);
            block[0] = PoseidonHash.Hash(block[..(1 + inBlock)]);
        } while (chunk < chunks);
        return block[0];
    }

    /// <summary>
    /// Chunk <paramref name="index"/> of <paramref name="data"/> as a field element: 31 bytes big-endian, the last
    /// chunk right-padded with zeros (byte j of the chunk has weight 256^(30−j)). <paramref name="scratch"/> is 32 bytes.
    /// </summary>
    private static Fr Chunk(ReadOnlySpan<byte> data, int index, Span<byte> scratch)
    {
        var slice = data.Slice(index * ChunkSize, Math.Min(ChunkSize, data.Length - index * ChunkSize));
        scratch.Clear();
        for (int j = 0; j < slice.Length; j++) scratch[ChunkSize - 1 - j] = slice[j];
        return Fr.FromBytesLittleEndian(scratch);
    }
}
