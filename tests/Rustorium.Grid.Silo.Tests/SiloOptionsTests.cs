using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text.Json;

namespace Rustorium.Grid.Silo.Tests;

/// <summary>The silo's configuration: sources, precedence, and the start-up checks with their messages.</summary>
public sealed class SiloOptionsTests : IDisposable
{
    private static readonly IReadOnlyDictionary<string, string?> NoEnvironment = new Dictionary<string, string?>();
    private readonly TempDirectory _dir = new();
    private readonly string _noSettings;   // a folder without appsettings.json

    public SiloOptionsTests()
    {
        _noSettings = Path.Combine(_dir.Path, "bin");
        Directory.CreateDirectory(_noSettings);
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>Loads with free ports and a data directory in the temp folder, plus <paramref name="args"/>.</summary>
    private (GridSiloOptions? Options, List<string> Problems) Load(string[] args, IReadOnlyDictionary<string, string?>? environment = null)
    {
        string[] baseline = ["--port", "0", "--http-port", "0", "--data-dir", Path.Combine(_dir.Path, "data")];
        var (options, _, problems) = GridSilo.LoadOptions([.. baseline, .. args], _noSettings, environment ?? NoEnvironment);
        return (options, problems);
    }

    private static string Single(List<string> problems) => Assert.Single(problems);

    [Fact]
    public void TheDefaultsAreTheDocumentedOnes()
    {
        var o = new GridSiloOptions();
        Assert.Equal("local", o.Region);
        Assert.Equal("./data/silo", o.DataDirectory);
        Assert.Equal("127.0.0.1", o.Host);
        Assert.Equal(7400, o.Port);
        Assert.Equal(7480, o.HttpPort);
        Assert.Equal(8, o.InitialShards);
        Assert.Equal(SyncMode.Full, o.DefaultSyncMode);
        Assert.Equal(new GridLimits(), o.Limits);
        Assert.Equal(TimeSpan.FromMinutes(15), o.GrainCollectionAge);
        Assert.Equal(TimeSpan.FromSeconds(10), o.TreeCommitInterval);
        Assert.Equal(o.TreeCommitInterval, o.ToEngineOptions().TreeCommitInterval);
        Assert.Empty(o.Validate());
        Assert.Equal(IPAddress.Loopback, o.BindAddress);
        Assert.Equal("127.0.0.1:7400", o.ResolveEndpoint(7400));
    }

    [Fact]
    public void TheShippedAppSettingsRepeatTheDefaults()
    {
        var path = typeof(SiloOptionsTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "SiloAppSettings").Value!;
        using var json = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        var defaults = new GridSiloOptions();
        foreach (var setting in json.RootElement.GetProperty("Silo").EnumerateObject())
        {
            var property = typeof(GridSiloOptions).GetProperty(setting.Name)!;
            Assert.Equal(Convert.ToString(property.GetValue(defaults), System.Globalization.CultureInfo.InvariantCulture), setting.Value.ToString());
        }
    }

    [Fact]
    public void FriendlySwitchesSettingsEnvironmentAndPrecedence()
    {
        var environment = new Dictionary<string, string?>
        {
            ["RGRID_Silo__Region"] = "eu-west",
            ["RGRID_Silo__InitialShards"] = "4",
            ["RGRID_Silo__Limits__MaxKeyBytes"] = "512",
            ["OTHER_Silo__Region"] = "ignored",
        };
        var (o, problems) = Load(["--shards", "16", "--sync-mode", "async", "--Silo:GrainCollectionAge=00:05:00", "--name=alpha"], environment);
        Assert.Empty(problems);
        Assert.Equal("eu-west", o!.Region);                 // environment
        Assert.Equal(16, o.InitialShards);                  // the command line wins over the environment
        Assert.Equal(512, o.Limits.MaxKeyBytes);
        Assert.Equal(GridLimits.Default.MaxValueBytes, o.Limits.MaxValueBytes);
        Assert.Equal(SyncMode.Async, o.DefaultSyncMode);
        Assert.Equal(TimeSpan.FromMinutes(5), o.GrainCollectionAge);
        Assert.Equal("alpha", o.ResolveName());
        Assert.Equal(0, o.Port);
    }

    [Fact]
    public void APortInUseIsNamedWithItsSetting()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;

        var message = Single(Load(["--port", port.ToString()]).Problems);
        Assert.Contains("Silo:Port", message);
        Assert.Contains($"port {port}", message);
        Assert.Contains("already in use", message);

        message = Single(Load(["--http-port", port.ToString()]).Problems);
        Assert.Contains("Silo:HttpPort", message);
        Assert.Contains("already in use", message);
    }

    [Fact]
    public void ADataDirectoryThatCannotBeCreatedOrWrittenIsRefused()
    {
        var file = Path.Combine(_dir.Path, "a-file");
        File.WriteAllText(file, "in the way");
        var message = Single(Load(["--data-dir", Path.Combine(file, "data")]).Problems);
        Assert.Contains("Silo:DataDirectory", message);
        Assert.Contains("cannot create", message);

        if (!OperatingSystem.IsWindows() && Environment.UserName != "root")
        {
            var readOnly = Path.Combine(_dir.Path, "read-only");
            Directory.CreateDirectory(readOnly);
            File.SetUnixFileMode(readOnly, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            message = Single(Load(["--data-dir", readOnly]).Problems);
            Assert.Contains("not writable", message);
        }
    }

    [Theory]
    [InlineData("0", "Silo:InitialShards must be 1..256")]
    [InlineData("257", "Silo:InitialShards must be 1..256")]
    [InlineData("-3", "Silo:InitialShards must be 1..256")]
    [InlineData("eight", "'Silo:InitialShards'")]
    public void ABadShardCountIsRefused(string shards, string expected) =>
        Assert.Contains(expected, Single(Load(["--shards", shards]).Problems));

    [Theory]
    [InlineData(new[] { "--sync-mode", "Fast" }, "Silo:DefaultSyncMode must be one of None, Async, Full; got \"Fast\"")]
    [InlineData(new[] { "--sync-mode", "3" }, "Silo:DefaultSyncMode must be one of None, Async, Full")]
    [InlineData(new[] { "--Silo:Limits:MaxKeyBytes=0" }, "Silo:Limits:MaxKeyBytes must be 1..65536; got 0")]
    [InlineData(new[] { "--Silo:Limits:MaxValueBytes=-1" }, "Silo:Limits:MaxValueBytes")]
    [InlineData(new[] { "--port", "70000" }, "Silo:Port must be 0..65535")]
    [InlineData(new[] { "--port", "7401", "--http-port", "7401" }, "Silo:Port and Silo:HttpPort must differ")]
    [InlineData(new[] { "--host", "example.com" }, "Silo:Host must be an IP address")]
    [InlineData(new[] { "--region", "eu west" }, "Silo:Region must be 1..64 letters")]
    [InlineData(new[] { "--collection-age", "-00:00:01" }, "Silo:GrainCollectionAge must be a positive duration")]
    [InlineData(new[] { "--Silo:RowCacheBytes=-1" }, "Silo:RowCacheBytes must be 0 (off)")]
    [InlineData(new[] { "--Silo:TreeCommitInterval=00:02:00" }, "Silo:TreeCommitInterval must be 00:00:00..00:01:00; got 00:02:00")]
    [InlineData(new[] { "--store", "mysql" }, "Silo:Store must be sqlite (embedded, one silo) or postgres (a cluster)")]
    [InlineData(new[] { "--store", "postgres" }, "Silo:Postgres must give the PostgreSQL connection string")]
    [InlineData(new[] { "--store", "postgres", "--postgres", "Host=127.0.0.1", "--schema", "9lives" }, "Silo:PostgresSchema")]
    [InlineData(new[] { "--store", "postgres", "--postgres", "Host=127.0.0.1", "--placement", "nearest" }, "Silo:Cluster:Placement must be one of load-based, random, prefer-local")]
    [InlineData(new[] { "--store", "postgres", "--postgres", "Host=127.0.0.1", "--Silo:Cluster:GrainPlacement=nearest" }, "Silo:Cluster:GrainPlacement must be one of prefer-local, random, load-based; got \"nearest\"")]
    [InlineData(new[] { "--store", "postgres", "--postgres", "Host=127.0.0.1", "--Silo:Cluster:DeathTimeout=00:00:02" }, "Silo:Cluster:DeathTimeout must be at least three heartbeat intervals")]
    [InlineData(new[] { "--store", "postgres", "--postgres", "Host=127.0.0.1", "--Silo:Cluster:MergeKeys=600000" }, "must be at most half of Silo:Cluster:SplitKeys")]
    [InlineData(new[] { "--store", "postgres", "--postgres", "Host=127.0.0.1", "--port", "0" }, "Silo:Port must be a fixed port in a cluster")]
    [InlineData(new[] { "--drain-timeout", "00:20:00" }, "Silo:DrainTimeout must be")]
    [InlineData(new[] { "--drain-timeout", "soon" }, "'Silo:DrainTimeout'")]
    [InlineData(new[] { "--prot", "7400" }, "Unknown option \"--prot\"")]
    [InlineData(new[] { "-p", "7400" }, "Unknown option \"-p\"")]
    [InlineData(new[] { "--Silo:Prot=7400" }, "Unknown setting Silo:Prot")]
    [InlineData(new[] { "--Silo:Limits:MaxKeys=1" }, "Unknown setting Silo:Limits:MaxKeys")]
    [InlineData(new[] { "serve" }, "Unexpected argument \"serve\"")]
    [InlineData(new[] { "--region" }, "Option --region needs a value")]
    [InlineData(new[] { "--region", "--shards", "4" }, "Option --region needs a value")]
    public void BadSettingsAreNamedInTheMessage(string[] args, string expected)
    {
        var problems = Load(args).Problems;
        Assert.Contains(problems, p => p.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void AnUnknownSettingInTheEnvironmentIsRefused()
    {
        var problems = Load([], new Dictionary<string, string?> { ["RGRID_Silo__DataDir"] = "/tmp/x" }).Problems;
        Assert.Contains("Unknown setting Silo:DataDir", Single(problems));
    }

    [Fact]
    public async Task TheExecutableExplainsAProblemWithoutAStackTraceAndExitsNonZero()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await GridSilo.RunAsync(["--shards", "0", "--port", "0", "--http-port", "0"], output, error);
        Assert.Equal(SiloExitCode.InvalidConfiguration, exit);
        var text = error.ToString();
        Assert.Contains("cannot start", text);
        Assert.Contains("Silo:InitialShards must be 1..256", text);
        Assert.Contains("got 0.", text);
        Assert.Contains("--help", text);
        Assert.DoesNotContain("   at ", text);
        Assert.DoesNotContain("Exception", text);
    }

    [Fact]
    public async Task HelpExplainsEveryOptionAndItsDefault()
    {
        var output = new StringWriter();
        Assert.Equal(SiloExitCode.Ok, await GridSilo.RunAsync(["--help"], output, TextWriter.Null));
        var help = output.ToString();
        foreach (var option in SiloConfiguration.SwitchMappings.Keys) Assert.Contains(option, help);
        foreach (var property in typeof(GridSiloOptions).GetProperties().Where(p => p.CanWrite))
            Assert.Contains("Silo:" + property.Name, help);
        foreach (var property in typeof(GridLimits).GetProperties().Where(p => p.CanWrite))
            Assert.Contains("Silo:Limits:" + property.Name, help);
        foreach (var text in new[] { "7400", "7480", "./data/silo", "127.0.0.1", "local", "Full", "RGRID_Silo__Port", "Exit codes" })
            Assert.Contains(text, help);
    }
}
