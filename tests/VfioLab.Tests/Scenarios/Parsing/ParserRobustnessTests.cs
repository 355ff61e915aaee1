using System.Text;
using VfioLab.Scenarios;

namespace VfioLab.Tests.Scenarios.Parsing;

/// <summary>Malformed text of any kind ends in a located <see cref="ScenarioParseException"/>, never another exception.</summary>
public sealed class ParserRobustnessTests
{
    private const int Seed = 20240611;

    private static void ParseOrLocatedError(string text, string label)
    {
        try
        {
            ScenarioSamples.Parse(text);
        }
        catch (ScenarioParseException e)
        {
            Assert.True(e.Line >= 1 && e.Column >= 1, $"{label}: bad location in {e.Message}");
            Assert.StartsWith($"{ScenarioSamples.File}:{e.Line}:{e.Column}: ", e.Message);
        }
        catch (Exception e)
        {
            Assert.Fail($"{label}: {e.GetType().Name} escaped: {e.Message}");
        }
    }

    [Fact]
    public void Parse_TruncatedAtEveryOffset_OnlyParseExceptions()
    {
        string text = ScenarioSamples.Full;
        int step = Math.Max(1, text.Length / 600);
        for (int cut = 0; cut < text.Length; cut += step)
        {
            ParseOrLocatedError(text[..cut], $"truncated at {cut}");
        }
    }

    [Fact]
    public void Parse_RandomByteFlips_OnlyParseExceptions()
    {
        var random = new Random(Seed);
        byte[] original = Encoding.UTF8.GetBytes(ScenarioSamples.Full);
        for (int round = 0; round < 400; round++)
        {
            byte[] bytes = (byte[])original.Clone();
            int flips = 1 + random.Next(4);
            for (int f = 0; f < flips; f++)
            {
                bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            }
            ParseOrLocatedError(Encoding.UTF8.GetString(bytes), $"seed {Seed} round {round}");
        }
    }

    [Fact]
    public void Parse_RandomPunctuationInsertions_OnlyParseExceptions()
    {
        var random = new Random(Seed + 1);
        const string Punctuation = "{}[]:,-&*!|>'\"%@`#?\t\n ";
        for (int round = 0; round < 300; round++)
        {
            var text = new StringBuilder(ScenarioSamples.Full);
            for (int f = 0; f < 3; f++)
            {
                text.Insert(random.Next(text.Length), Punctuation[random.Next(Punctuation.Length)]);
            }
            ParseOrLocatedError(text.ToString(), $"seed {Seed + 1} round {round}");
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("\0\0\0")]
    [InlineData("\uFEFF")]
    [InlineData("~")]
    [InlineData("42")]
    [InlineData("[1, 2")]
    [InlineData("vfiolab: 1\nsteps: &s [*s]\n")]
    [InlineData("vfiolab: 1\nsteps: *missing\n")]
    [InlineData("vfiolab: 1\n? [a]\n: b\nsteps: []\n")]
    [InlineData("vfiolab: 1\nsteps:\n  - check:\n")]
    [InlineData("vfiolab: 1\nsteps:\n  - mmap: { size: 0xffffffffffffffffff }\n")]
    [InlineData("vfiolab: 1\nsteps:\n  - mmap: { size: 1TiB, as: [x] }\n")]
    [InlineData("vfiolab: 1\nsteps:\n  - exit: []\n")]
    [InlineData("vfiolab: 1\nsteps:\n  - 5\n")]
    [InlineData("vfiolab: !!binary AAAA\nsteps: []\n")]
    [InlineData("%YAML 1.1\n---\nvfiolab: 1\nsteps: []\n...\n")]
    public void Parse_OddInputs_ParseExceptionOrSuccess(string text) => ParseOrLocatedError(text, text);

    [Fact]
    public void Parse_RandomBinaryJunk_OnlyParseExceptions()
    {
        var random = new Random(Seed + 2);
        for (int round = 0; round < 100; round++)
        {
            byte[] bytes = new byte[random.Next(1, 200)];
            random.NextBytes(bytes);
            ParseOrLocatedError(Encoding.Latin1.GetString(bytes), $"seed {Seed + 2} round {round}");
        }
    }
}
