using System.Text;
using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Poseidon;

namespace Rustorium.Grid.Cli.Tests;

public sealed class PoseidonCommandTests
{
    [Theory]
    [InlineData("7853200120776062878684798364095072458815029376092732009249414926327459813530", "1", "2")]
    [InlineData("19014214495641488759237505126948346942972912379615652741039992445865937985820", "0")]
    public async Task Prints_circomlib_known_answers(string expected, params string[] inputs)
    {
        var result = await Cli.RunAsync(["poseidon", .. inputs]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(expected + Environment.NewLine, result.Out);
        Assert.Empty(result.Err);
    }

    [Fact]
    public async Task Sixteen_inputs_match_the_library()
    {
        var inputs = Enumerable.Range(1, 16).Select(i => Fr.FromUInt64((ulong)i * 1_000_003)).ToArray();

        var result = await Cli.RunAsync(["poseidon", .. inputs.Select(x => x.ToString())]);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(PoseidonHash.Hash(inputs).ToString(), result.OutLines.Single());
    }

    [Theory]
    [InlineData("")]
    [InlineData("user:42")]
    [InlineData("a string longer than thirty-one bytes, so it spans several chunks of the mapping ✓")]
    public async Task Text_hashes_the_utf8_bytes_like_PoseidonBytes(string text)
    {
        var expected = PoseidonBytes.Hash(Encoding.UTF8.GetBytes(text)).ToString();

        var viaText = await Cli.RunAsync("poseidon", "--text", text);
        var viaBytes = await Cli.RunAsync("poseidon", "--bytes", "0x" + Convert.ToHexString(Encoding.UTF8.GetBytes(text)));

        Assert.Equal(0, viaText.ExitCode);
        Assert.Equal(expected, viaText.OutLines.Single());
        Assert.Equal(0, viaBytes.ExitCode);
        Assert.Equal(expected, viaBytes.OutLines.Single());
    }

    [Fact]
    public async Task Empty_bytes_hash_to_poseidon_of_zero()
    {
        var result = await Cli.RunAsync("poseidon", "--bytes", "");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("19014214495641488759237505126948346942972912379615652741039992445865937985820", result.OutLines.Single());
    }

    [Theory]
    [InlineData("Poseidon takes 1 to 16 inputs; got 0")]
    [InlineData("got 17", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17")]
    [InlineData("leading zeros", "01")]
    [InlineData("input 2", "1", "x")]
    [InlineData("not a decimal number", "1.5")]
    [InlineData("not below", "21888242871839275222246405745257275088548364400416034343698204186575808495617")]
    [InlineData("not several", "1", "--text", "a")]
    [InlineData("not several", "--bytes", "00", "--text", "a")]
    [InlineData("is not hex", "--bytes", "abc")]
    [InlineData("is not hex", "--bytes", "0xzz")]
    [InlineData("Required argument missing", "--bytes")]
    [InlineData("not a decimal number", "--nope")]
    public async Task Bad_input_exits_2_with_a_message(string fragment, params string[] args)
    {
        var result = await Cli.RunAsync(["poseidon", .. args]);

        Assert.True(result.ExitCode == (int)ExitCode.BadInput, result.ToString());
        Assert.Contains(fragment, result.Err);
        Assert.Empty(result.Out);
    }
}
