using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rustorium.Grid.Cluster;

namespace Rustorium.Grid.Runtime.Cluster;

/// <summary>
/// Keeps this silo in the membership table: joins when the silo starts, heartbeats every
/// <see cref="ClusterOptions.HeartbeatInterval"/>, reads the table and declares dead every member whose heartbeat is older
/// than <see cref="ClusterOptions.DeathTimeout"/> by the table's clock, and leaves cleanly when the silo stops. When its own
/// heartbeat is refused (the others declared it dead) it marks the silo dead and stops the host: a silo never serves
/// after the cluster gave up on it.
/// </summary>
public sealed class MembershipAgent : IHostedService, IAsyncDisposable
{
    private readonly IMembershipTable _table;
    private readonly ClusterMembership _membership;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger<MembershipAgent> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;

    /// <summary>Created by DI.</summary>
    public MembershipAgent(IMembershipTable table, ClusterMembership membership, IHostApplicationLifetime lifetime, ILogger<MembershipAgent> logger)
    {
        _table = table;
        _membership = membership;
        _lifetime = lifetime;
        _logger = logger;
        membership.SetRefresh(async ct => _membership.Update(await _table.ReadAllAsync(ct).ConfigureAwait(false)));
    }

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var entry = await _table.JoinAsync(_membership.Self, cancellationToken).ConfigureAwait(false);
        _membership.Joined(entry);
        _membership.Update(await _table.ReadAllAsync(cancellationToken).ConfigureAwait(false));
        _logger.LogInformation("Joined the cluster as {Silo} ({Members} live members)", entry.Address,
            _membership.Members.Count(m => m.Status != SiloStatus.Dead));
        _loop = Task.Run(() => LoopAsync(_stopping.Token), CancellationToken.None);
    }

    /// <summary>One round: heartbeat (with this silo's load), read, declare the silent dead. Public for tests that drive rounds themselves.</summary>
    public async Task RoundAsync(CancellationToken cancellationToken)
    {
        if (!await _table.HeartbeatAsync(_membership.Address, _membership.CurrentLoad(), cancellationToken).ConfigureAwait(false))
        {
            if (!_membership.IsDeclaredDead)
            {
                _logger.LogCritical("The cluster declared this silo ({Silo}) dead: it stops serving and exits", _membership.Address);
                _membership.DeclaredDead();
                _lifetime.StopApplication();
            }
            return;
        }
        _membership.HeartbeatSucceeded();
        var members = await _table.ReadAllAsync(cancellationToken).ConfigureAwait(false);
        bool changed = false;
        foreach (var member in members)
        {
            if (member.Status == SiloStatus.Dead || member.Address == _membership.Address) continue;
            if (member.HeartbeatAge <= _membership.Options.DeathTimeout) continue;
            if (await _table.DeclareDeadAsync(member.Address, _membership.Options.DeathTimeout, cancellationToken).ConfigureAwait(false))
            {
                _logger.LogWarning("Declared silo {Silo} ({Name}) dead: no heartbeat for {Age:0.0} s", member.Address, member.Name,
                    member.HeartbeatAge.TotalSeconds);
                changed = true;
            }
        }
        if (changed) members = await _table.ReadAllAsync(cancellationToken).ConfigureAwait(false);
        _membership.Update(members);
    }

    private async Task LoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_membership.Options.HeartbeatInterval);
        while (!_membership.IsDeclaredDead)
        {
            try
            {
                if (!await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false)) return;
                await RoundAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The table is unreachable: keep trying; the serving lease runs out on its own if this lasts.
                _logger.LogWarning("Membership round failed: {Message}", e.Message);
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>Leaves the table (status Dead) unless the cluster already declared this silo dead.</remarks>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null) await _loop.ConfigureAwait(false);
        if (_membership.IsDeclaredDead || !_membership.HasJoined) return;
        try
        {
            await _table.SetStatusAsync(_membership.Address, SiloStatus.Dead, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Left the cluster ({Silo})", _membership.Address);
        }
        catch (Exception e) when (e is GridException or OperationCanceledException)
        {
            _logger.LogWarning("Could not leave the membership table cleanly ({Message}); the others will declare this silo dead", e.Message);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _stopping.Dispose();
        return ValueTask.CompletedTask;
    }
}
