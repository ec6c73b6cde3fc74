using Rustorium.Grid.Cluster;
using Rustorium.Grid.Runtime.Grains;

namespace Rustorium.Grid.Runtime.Cluster;

/// <summary>What the placement of a new activation of a directory-placed grain is about.</summary>
/// <param name="Grain">The grain that has no activation in the cluster.</param>
/// <param name="Candidates">Active silos, ordered by address, with the load each reported; never empty.</param>
/// <param name="Requester">The silo the call arrived at (the one asking).</param>
public sealed record GrainPlacementRequest(GrainId Grain, IReadOnlyList<PlacementCandidate> Candidates, SiloAddress Requester);

/// <summary>
/// Chooses the silo a directory-placed grain is activated on, when a call finds it active nowhere (Orleans's placement
/// strategies for grains). The silo that asks registers the grain to the chosen silo in the grain directory and forwards the
/// call there; the registration is conditional, so two silos placing one grain at once agree on whichever registered first.
/// </summary>
/// <remarks>
/// A grain type picks its director by name with <see cref="GrainPlacementAttribute.Director"/>; the silo setting
/// <c>Silo:Cluster:GrainPlacement</c> names the default. Hosts add their own by registering an implementation as a service.
/// Every silo of the cluster must be able to host the grain types whose director may choose another silo (all but
/// prefer-local).
/// </remarks>
public interface IGrainPlacementDirector
{
    /// <summary>The name a grain type or the silo setting uses to pick it.</summary>
    string Name { get; }

    /// <summary>The chosen silo: one of <see cref="GrainPlacementRequest.Candidates"/>.</summary>
    SiloAddress Choose(GrainPlacementRequest request);
}

/// <summary>Activates the grain on the silo the call arrived at (Orleans's PreferLocalPlacement). The default.</summary>
public sealed class PreferLocalGrainPlacement : IGrainPlacementDirector
{
    /// <inheritdoc />
    public string Name => "prefer-local";

    /// <inheritdoc />
    public SiloAddress Choose(GrainPlacementRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Candidates.Any(c => c.Silo == request.Requester) ? request.Requester : RandomGrainPlacement.Pick(request);
    }
}

/// <summary>Spreads grains uniformly: a hash of the grain id picks the silo, so every silo asking picks the same one.</summary>
public sealed class RandomGrainPlacement : IGrainPlacementDirector
{
    /// <inheritdoc />
    public string Name => "random";

    /// <inheritdoc />
    public SiloAddress Choose(GrainPlacementRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Pick(request);
    }

    internal static SiloAddress Pick(GrainPlacementRequest request) =>
        request.Candidates[(int)(GrainPlacementHash.Of(request.Grain) % (ulong)request.Candidates.Count)].Silo;
}

/// <summary>
/// The less loaded of two silos picked by a hash of the grain id ("power of two choices", as Orleans's activation-count
/// placement): fewer activations first, then the calls per second on <see cref="LoadBasedPlacement"/>'s doubling scale,
/// then the first pick. Load comes with the heartbeats, so it is up to one heartbeat old; sampling two silos instead of
/// taking the least loaded of all keeps a burst of new grains from all landing on the one silo that looked idlest.
/// </summary>
public sealed class LoadBasedGrainPlacement : IGrainPlacementDirector
{
    /// <inheritdoc />
    public string Name => "load-based";

    /// <inheritdoc />
    public SiloAddress Choose(GrainPlacementRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var candidates = request.Candidates;
        if (candidates.Count == 1) return candidates[0].Silo;
        ulong h = GrainPlacementHash.Of(request.Grain);
        int n = candidates.Count;
        int first = (int)(h % (ulong)n);
        int second = (first + 1 + (int)((h >> 32) % (ulong)(n - 1))) % n; // a different silo
        var a = candidates[first];
        var b = candidates[second];
        int byActivations = b.Load.Activations.CompareTo(a.Load.Activations);
        if (byActivations != 0) return byActivations < 0 ? b.Silo : a.Silo;
        return LoadBasedPlacement.BusyClass(b.Load.OpsPerSecond) < LoadBasedPlacement.BusyClass(a.Load.OpsPerSecond) ? b.Silo : a.Silo;
    }
}

/// <summary>The grain placement directors a silo knows: the built-in ones and any the host added.</summary>
public sealed class GrainPlacementDirectors
{
    private readonly Dictionary<string, IGrainPlacementDirector> _byName = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The built-in directors' names.</summary>
    public static IReadOnlyList<string> BuiltInNames { get; } = ["prefer-local", "random", "load-based"];

    /// <summary>The built-in directors plus <paramref name="custom"/> (a custom one may replace a built-in of the same name).</summary>
    /// <param name="defaultName">The director of grain types that name none.</param>
    /// <param name="custom">Directors the host registered.</param>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/>: <paramref name="defaultName"/> is unknown.</exception>
    public GrainPlacementDirectors(string defaultName = "prefer-local", IEnumerable<IGrainPlacementDirector>? custom = null)
    {
        foreach (var director in new IGrainPlacementDirector[] { new PreferLocalGrainPlacement(), new RandomGrainPlacement(), new LoadBasedGrainPlacement() }
                     .Concat(custom ?? []))
            _byName[director.Name] = director;
        Default = Find(defaultName);
    }

    /// <summary>The director of grain types that name none.</summary>
    public IGrainPlacementDirector Default { get; }

    /// <summary>Every known name.</summary>
    public IReadOnlyCollection<string> Names => _byName.Keys;

    /// <summary>The director called <paramref name="name"/>, or <see cref="Default"/> for null.</summary>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> for an unknown name.</exception>
    public IGrainPlacementDirector For(string? name) => name is null ? Default : Find(name);

    private IGrainPlacementDirector Find(string name) =>
        name is not null && _byName.TryGetValue(name, out var director)
            ? director
            : throw GridException.InvalidArgument($"Unknown grain placement director '{name}'; this silo knows {string.Join(", ", _byName.Keys.Order(StringComparer.Ordinal))}.");
}

/// <summary>A hash of a grain id that is the same in every process (unlike <see cref="GrainId.GetHashCode"/>).</summary>
internal static class GrainPlacementHash
{
    public static ulong Of(GrainId grain)
    {
        ulong h = 0xcbf29ce484222325UL; // FNV-1a over the id's text, then a finaliser so that similar keys spread
        foreach (char c in grain.ToString())
        {
            h ^= c;
            h *= 0x100000001b3UL;
        }
        return RandomPlacement.Mix(h);
    }
}
