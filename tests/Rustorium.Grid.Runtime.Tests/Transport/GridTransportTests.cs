using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using Rustorium.Grid.Runtime.Transport;
using static Rustorium.Grid.Runtime.Tests.Transport.TransportTestKit;

namespace Rustorium.Grid.Runtime.Tests.Transport;

/// <summary>Client and server over real TCP on 127.0.0.1: multiplexing, errors, timeouts, cancellation, shutdown.</summary>
[Trait("Category", "Integration")]
public sealed class GridTransportTests
{
    [Fact(Timeout = 60_000)]
    public async Task ManyConcurrentCallersShareOneConnectionAndGetTheirOwnResponses()
    {
        const int callers = 64, callsPerCaller = 200;
        long arrivals = 0, completions = 0, outOfOrder = 0;
        var handler = new DelegateHandler(async (payload, context, ct) =>
        {
            long arrived = Interlocked.Increment(ref arrivals);
            ulong id = payload.ReadId();
            // Every few requests wait a little, so answers leave in a different order than requests came.
            if (id % 7 == 0) await Task.Delay(1, ct);
            else if (id % 3 == 0) await Task.Yield();
            if (Interlocked.Increment(ref completions) != arrived) Interlocked.Increment(ref outOfOrder);
            var span = context.Response.GetSpan(16);
            BinaryPrimitives.WriteUInt64LittleEndian(span, id);
            BinaryPrimitives.WriteUInt64LittleEndian(span[8..], id * 31 + 7);
            context.Response.Advance(16);
        });

        await using var server = StartServer(handler);
        await using var connection = await ConnectAsync(server);

        var tasks = Enumerable.Range(0, callers).Select(c => Task.Run(async () =>
        {
            var request = new byte[24];
            for (int i = 0; i < callsPerCaller; i++)
            {
                ulong id = (ulong)(c * callsPerCaller + i + 1);
                BinaryPrimitives.WriteUInt64LittleEndian(request, id);
                using var response = await connection.CallAsync(request, TimeSpan.FromSeconds(30));
                Assert.Equal(16, response.Length);
                Assert.Equal(id, BinaryPrimitives.ReadUInt64LittleEndian(response.Payload.Span));
                Assert.Equal(id * 31 + 7, BinaryPrimitives.ReadUInt64LittleEndian(response.Payload.Span[8..]));
            }
        })).ToArray();
        await Task.WhenAll(tasks).WaitAsync(Bound);

        Assert.Equal(callers * callsPerCaller, Interlocked.Read(ref arrivals));
        Assert.True(Interlocked.Read(ref outOfOrder) > 0, "The handler should have completed some requests out of order.");
        Assert.Equal(0, connection.PendingCallCount);
        Assert.Equal(1, server.ConnectionCount);
    }

    [Fact(Timeout = 60_000)]
    public async Task ATimedOutCallFailsWithTimeoutAndTheHandlerIsCancelled()
    {
        var handlerCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new DelegateHandler(async (_, _, ct) =>
        {
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                handlerCancelled.TrySetResult();
                throw;
            }
        });
        await using var server = StartServer(handler);
        await using var connection = await ConnectAsync(server);

        var ex = await Assert.ThrowsAsync<GridException>(() => connection.CallAsync(new byte[] { 1 }, TimeSpan.FromMilliseconds(150)).WaitAsync(Bound));
        Assert.Equal(GridErrorCode.Timeout, ex.Code);
        await handlerCancelled.Task.WaitAsync(Bound);

        // The connection is still fine afterwards.
        Assert.True(connection.IsConnected);
        Assert.Equal(0, connection.PendingCallCount);
    }

    [Fact(Timeout = 60_000)]
    public async Task TheServerEnforcesTheDeadlineEvenIfTheHandlerIgnoresItsToken()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new DelegateHandler(async (_, _, _) => await release.Task);
        await using var server = StartServer(handler);
        await using var raw = await RawPeer.ConnectAsync(server.LocalEndPoint);
        await raw.SendAsync(Hello());
        var ack = await raw.ReadFrameAsync();
        Assert.Equal(GridFrameType.HelloAck, ack!.Value.Header.Type);

        await raw.SendAsync(Request(42, deadlineMs: 100, [1, 2, 3]));
        var answer = await raw.ReadFrameAsync();
        Assert.Equal(GridFrameType.Error, answer!.Value.Header.Type);
        Assert.Equal(42UL, answer.Value.Header.CorrelationId);
        Assert.Equal(GridErrorCode.Timeout, ReadError(answer.Value.Payload).Code);
        release.SetResult();
    }

    [Fact(Timeout = 60_000)]
    public async Task CallerCancellationSendsCancelWhichReachesTheHandler()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handlerCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new DelegateHandler(async (_, _, ct) =>
        {
            started.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                handlerCancelled.TrySetResult();
                throw;
            }
        });
        await using var server = StartServer(handler);
        await using var connection = await ConnectAsync(server);

        using var cts = new CancellationTokenSource();
        var call = connection.CallAsync(new byte[] { 9 }, TimeSpan.FromMinutes(5), cts.Token);
        await started.Task.WaitAsync(Bound);
        cts.Cancel();
        var ex = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Bound));
        Assert.Equal(cts.Token, ex.CancellationToken);
        await handlerCancelled.Task.WaitAsync(Bound); // the Cancel frame, not the 5-minute deadline
        await EventuallyAsync(() => server.InflightRequestCount == 0, "the cancelled request has left the server");
        Assert.True(connection.IsConnected);
    }

    [Fact(Timeout = 60_000)]
    public async Task GridExceptionsKeepTheirCodeMessageAndOwnerHint()
    {
        var handler = new DelegateHandler((_, _, _) =>
            throw new GridException(GridErrorCode.NotOwner, "Shard 7 moved to eu-west.") { OwnerHint = new OwnerHint(7, "10.0.0.7:7000", 12) });
        await using var server = StartServer(handler);
        await using var connection = await ConnectAsync(server);

        var ex = await Assert.ThrowsAsync<GridException>(() => connection.CallAsync(new byte[] { 1 }, TimeSpan.FromSeconds(10)));
        Assert.Equal(GridErrorCode.NotOwner, ex.Code);
        Assert.Equal("Shard 7 moved to eu-west.", ex.Message);
        Assert.Equal(new OwnerHint(7, "10.0.0.7:7000", 12), ex.OwnerHint);
    }

    [Fact(Timeout = 60_000)]
    public async Task OtherExceptionsBecomeInternalWithoutDetailsOnTheWire()
    {
        var observed = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new DelegateHandler((_, _, _) => throw new InvalidOperationException("secret connection string=xyz"));
        var options = new GridServerOptions { Name = "s", HandlerFault = (_, e) => observed.TrySetResult(e) };
        await using var server = StartServer(handler, options);
        await using var connection = await ConnectAsync(server);

        var ex = await Assert.ThrowsAsync<GridException>(() => connection.CallAsync(new byte[] { 1 }, TimeSpan.FromSeconds(10)));
        Assert.Equal(GridErrorCode.Internal, ex.Code);
        Assert.DoesNotContain("secret", ex.Message);
        Assert.DoesNotContain(" at ", ex.Message);
        Assert.IsType<InvalidOperationException>(await observed.Task.WaitAsync(Bound));
    }

    [Fact(Timeout = 60_000)]
    public async Task EmptyRequestsAndResponsesAndLargeOnesRoundTrip()
    {
        await using var server = StartServer(DelegateHandler.Echo);
        await using var connection = await ConnectAsync(server);

        using (var empty = await connection.CallAsync(ReadOnlyMemory<byte>.Empty, TimeSpan.FromSeconds(10)))
            Assert.Equal(0, empty.Length);

        var big = new byte[3 * 1024 * 1024 + 17];
        new Random(5).NextBytes(big);
        using var echoed = await connection.CallAsync(big, TimeSpan.FromSeconds(30));
        Assert.True(echoed.Payload.Span.SequenceEqual(big));
    }

    [Fact(Timeout = 60_000)]
    public async Task ARequestLargerThanTheServersMaxFrameIsRefusedBeforeSending()
    {
        await using var server = StartServer(DelegateHandler.Echo, new GridServerOptions { MaxFrameSize = 64 * 1024 });
        await using var connection = await ConnectAsync(server);
        Assert.Equal(64 * 1024, connection.Server.MaxFrameSize);

        var ex = await Assert.ThrowsAsync<GridException>(() => connection.CallAsync(new byte[70_000], TimeSpan.FromSeconds(10)));
        Assert.Equal(GridErrorCode.InvalidArgument, ex.Code);
        using var ok = await connection.CallAsync(new byte[1000], TimeSpan.FromSeconds(10));
        Assert.Equal(1000, ok.Length);
    }

    [Fact(Timeout = 60_000)]
    public async Task ConcurrencyPerConnectionIsBoundedAndExcessRequestsWait()
    {
        int running = 0, maxRunning = 0;
        var handler = new DelegateHandler(async (payload, context, _) =>
        {
            int now = Interlocked.Increment(ref running);
            InterlockedMax(ref maxRunning, now);
            await Task.Yield();
            await Task.Delay(1);
            Interlocked.Decrement(ref running);
            context.Response.Write(payload.Span);
        });
        await using var server = StartServer(handler, new GridServerOptions { MaxConcurrentRequestsPerConnection = 2 });
        await using var connection = await ConnectAsync(server);

        var calls = Enumerable.Range(0, 40).Select(i => connection.CallAsync(new[] { (byte)i }, TimeSpan.FromSeconds(30))).ToArray();
        var responses = await Task.WhenAll(calls).WaitAsync(Bound);
        for (int i = 0; i < responses.Length; i++) Assert.Equal((byte)i, responses[i].Payload.Span[0]);
        Assert.InRange(maxRunning, 1, 2);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task PendingCallsFailWithUnavailableWhenTheServerStops()
    {
        int started = 0;
        var allStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ignoreToken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new DelegateHandler(async (payload, _, ct) =>
        {
            if (Interlocked.Increment(ref started) == 4) allStarted.TrySetResult();
            if (payload.Span[0] % 2 == 0) await Task.Delay(Timeout.Infinite, ct); // observes the stop
            else await ignoreToken.Task;                                          // does not
        });
        await using var server = StartServer(handler);
        await using var connection = await ConnectAsync(server);

        var calls = Enumerable.Range(0, 4).Select(i => connection.CallAsync(new[] { (byte)i }, TimeSpan.FromMinutes(5))).ToArray();
        await allStarted.Task.WaitAsync(Bound);
        await server.StopAsync(TimeSpan.Zero).WaitAsync(Bound);

        foreach (var call in calls)
        {
            var ex = await Assert.ThrowsAsync<GridException>(() => call.WaitAsync(Bound));
            Assert.Equal(GridErrorCode.Unavailable, ex.Code);
        }
        await connection.Completion.WaitAsync(Bound);
        Assert.False(connection.IsConnected);
        var after = await Assert.ThrowsAsync<GridException>(() => connection.CallAsync(new byte[] { 1 }, TimeSpan.FromSeconds(5)));
        Assert.Equal(GridErrorCode.Unavailable, after.Code);
        ignoreToken.SetResult();
    }

    [Fact(Timeout = 60_000)]
    public async Task StopAsyncLetsInFlightCallsFinishAndRefusesNewOnes()
    {
        const int n = 10;
        int entered = 0;
        var allEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new DelegateHandler(async (payload, context, _) =>
        {
            if (payload.Span[0] < n && Interlocked.Increment(ref entered) == n) allEntered.TrySetResult();
            await gate.Task;
            context.Response.Write(payload.Span);
        });
        var server = StartServer(handler);
        await using var connection = await ConnectAsync(server);

        var calls = Enumerable.Range(0, n).Select(i => connection.CallAsync(new[] { (byte)i }, TimeSpan.FromMinutes(1))).ToArray();
        await allEntered.Task.WaitAsync(Bound);

        var stop = server.StopAsync(TimeSpan.FromMinutes(1));
        await EventuallyAsync(() => server.IsStopping, "the server is stopping");
        var refused = await Assert.ThrowsAsync<GridException>(() => connection.CallAsync(new byte[] { 200 }, TimeSpan.FromSeconds(10)));
        Assert.Equal(GridErrorCode.Unavailable, refused.Code);
        Assert.False(stop.IsCompleted, "StopAsync must wait for the calls in flight.");

        gate.SetResult();
        var responses = await Task.WhenAll(calls).WaitAsync(Bound);
        for (int i = 0; i < n; i++) Assert.Equal((byte)i, responses[i].Payload.Span[0]);
        await stop.WaitAsync(Bound);
        await connection.Completion.WaitAsync(Bound);
        await server.DisposeAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task TheServerIntroducesItselfAndTheClientAnswersPingsWithRoundTripTimes()
    {
        await using var server = StartServer(DelegateHandler.Echo, new GridServerOptions { Name = "eu-west/silo-1" });
        await using var connection = await ConnectAsync(server, new GridConnectionOptions { PeerName = "c-1" });
        Assert.Equal("eu-west/silo-1", connection.Server.Name);
        Assert.Equal(GridPeerRole.Silo, connection.Server.Role);
        Assert.Equal(GridProtocol.Version, connection.Server.ProtocolVersion);
        var rtt = await connection.PingAsync().WaitAsync(Bound);
        Assert.True(rtt > TimeSpan.Zero);
    }

    [Fact(Timeout = 60_000)]
    public async Task SimulatedLatencyDelaysEveryFrameTheServerSends()
    {
        var delay = TimeSpan.FromMilliseconds(60);
        var options = new GridServerOptions { Latency = new FixedTransportLatency(delay) };
        await using var server = StartServer(DelegateHandler.Echo, options);
        await using var connection = await ConnectAsync(server);

        var rtt = await connection.PingAsync().WaitAsync(Bound);
        Assert.True(rtt >= delay - TimeSpan.FromMilliseconds(2), $"Ping took {rtt.TotalMilliseconds} ms; the simulated one-way delay is {delay.TotalMilliseconds} ms.");

        // Many calls at once: the delay is a pipeline, not a lock (they all take ~one delay, not the sum).
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        var calls = Enumerable.Range(0, 50).Select(i => connection.CallAsync(new[] { (byte)i }, TimeSpan.FromSeconds(30))).ToArray();
        var responses = await Task.WhenAll(calls).WaitAsync(Bound);
        var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(start);
        for (int i = 0; i < 50; i++) Assert.Equal((byte)i, responses[i].Payload.Span[0]);
        Assert.True(elapsed >= delay - TimeSpan.FromMilliseconds(2));
        Assert.True(elapsed < delay * 25, $"50 concurrent calls took {elapsed.TotalMilliseconds} ms: the delays were serialised.");
    }

    [Fact(Timeout = 60_000)]
    public async Task AClientWhoseSiloGoesSilentDeclaresTheConnectionDeadByKeepalive()
    {
        using var fake = new RawListener();
        var accept = fake.AcceptAsync();
        var connect = GridConnection.ConnectAsync(fake.EndPoint, new GridConnectionOptions
        {
            KeepAliveInterval = TimeSpan.FromMilliseconds(100),
            KeepAliveTimeout = TimeSpan.FromMilliseconds(400),
        });
        await using var silo = await accept;
        var hello = await silo.ReadFrameAsync();
        Assert.Equal(GridFrameType.Hello, hello!.Value.Header.Type);
        await silo.SendAsync(RawListener.HelloAck());
        await using var connection = await connect.WaitAsync(Bound);

        var call = connection.CallAsync(new byte[] { 1 }, TimeSpan.FromMinutes(5));
        var request = await silo.ReadFrameAsync();
        Assert.Equal(GridFrameType.Request, request!.Value.Header.Type);
        var ping = await silo.ReadFrameAsync(); // the fake silo never answers
        Assert.Equal(GridFrameType.Ping, ping!.Value.Header.Type);

        var ex = await Assert.ThrowsAsync<GridException>(() => call.WaitAsync(Bound));
        Assert.Equal(GridErrorCode.Unavailable, ex.Code);
        Assert.Contains("keepalive", ex.Message);
    }

    [Fact(Timeout = 60_000)]
    public async Task TheClientRefusesASiloOfAnotherMajorVersion()
    {
        using var fake = new RawListener();
        var accept = fake.AcceptAsync();
        var connect = GridConnection.ConnectAsync(fake.EndPoint, GridConnectionOptions.Default);
        await using var silo = await accept;
        await silo.ReadFrameAsync();
        await silo.SendAsync(RawListener.HelloAck(version: 0x0200));
        var ex = await Assert.ThrowsAsync<GridException>(() => connect.WaitAsync(Bound));
        Assert.Equal(GridErrorCode.ProtocolViolation, ex.Code);
        Assert.Contains("2.0", ex.Message);
        await silo.ExpectErrorThenCloseAsync(GridErrorCode.ProtocolViolation); // told before the close
    }

    [Fact(Timeout = 60_000)]
    public async Task ConnectionLossFailsPendingCallsWithUnavailable()
    {
        using var fake = new RawListener();
        var accept = fake.AcceptAsync();
        var connect = GridConnection.ConnectAsync(fake.EndPoint, GridConnectionOptions.Default);
        var silo = await accept;
        await silo.ReadFrameAsync();
        await silo.SendAsync(RawListener.HelloAck());
        await using var connection = await connect.WaitAsync(Bound);

        var calls = Enumerable.Range(0, 5).Select(_ => connection.CallAsync(new byte[] { 1 }, TimeSpan.FromMinutes(5))).ToArray();
        for (int i = 0; i < 5; i++) await silo.ReadFrameAsync();
        await silo.DisposeAsync(); // the silo vanishes
        foreach (var call in calls)
            Assert.Equal(GridErrorCode.Unavailable, (await Assert.ThrowsAsync<GridException>(() => call.WaitAsync(Bound))).Code);
    }

    [Fact(Timeout = 60_000)]
    public async Task ConnectingToNothingFailsWithUnavailable()
    {
        using var fake = new RawListener();
        var endPoint = fake.EndPoint;
        fake.Dispose(); // nobody listens there any more
        var ex = await Assert.ThrowsAsync<GridException>(() => GridConnection.ConnectAsync(endPoint, GridConnectionOptions.Default).WaitAsync(Bound));
        Assert.Equal(GridErrorCode.Unavailable, ex.Code);
    }

    [Fact(Timeout = 60_000)]
    public async Task DisposeFailsPendingCallsAndClosesCleanly()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serverSawCancel = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new DelegateHandler(async (_, _, ct) =>
        {
            started.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                serverSawCancel.TrySetResult();
            }
        });
        await using var server = StartServer(handler);
        var connection = await ConnectAsync(server);
        var call = connection.CallAsync(new byte[] { 1 }, TimeSpan.FromMinutes(5));
        await started.Task.WaitAsync(Bound);

        await connection.DisposeAsync().AsTask().WaitAsync(Bound);
        Assert.Equal(GridErrorCode.Unavailable, (await Assert.ThrowsAsync<GridException>(() => call.WaitAsync(Bound))).Code);
        await serverSawCancel.Task.WaitAsync(Bound);
        await EventuallyAsync(() => server.ConnectionCount == 0, "the server has closed its side");
    }

    [Fact(Timeout = 60_000)]
    public async Task TheServerClosesIdleConnectionsAndSaysWhy()
    {
        await using var server = StartServer(DelegateHandler.Echo, new GridServerOptions { IdleTimeout = TimeSpan.FromMilliseconds(200) });
        await using var connection = await ConnectAsync(server, new GridConnectionOptions { KeepAliveInterval = Timeout.InfiniteTimeSpan });
        await connection.Completion.WaitAsync(Bound);
        Assert.Equal(GridErrorCode.Unavailable, connection.CloseReason!.Code);
        Assert.Contains("without traffic", connection.CloseReason.Message);
        await EventuallyAsync(() => server.ConnectionCount == 0, "the server has forgotten the connection");
    }

    [Fact(Timeout = 60_000)]
    public async Task ConnectionsBeyondTheLimitAreRefusedWithUnavailable()
    {
        await using var server = StartServer(DelegateHandler.Echo, new GridServerOptions { MaxConnections = 1 });
        await using var first = await ConnectAsync(server);
        var ex = await Assert.ThrowsAsync<GridException>(() => ConnectAsync(server));
        Assert.Equal(GridErrorCode.Unavailable, ex.Code);
        Assert.Contains("limit of 1 connections", ex.Message);
        using var ok = await first.CallAsync(new byte[] { 1 }, TimeSpan.FromSeconds(10));
        Assert.Equal(1, ok.Length);
    }

    [Fact(Timeout = 60_000)]
    public async Task ACancelledCallIsNotAnsweredAndALateResponseIsIgnored()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new DelegateHandler(async (payload, context, _) =>
        {
            if (payload.Span[0] == 0) await gate.Task; // ignores its token
            context.Response.Write(payload.Span);
        });
        await using var server = StartServer(handler);

        // A Cancel means no answer at all, even when the handler completes afterwards.
        await using (var raw = await RawPeer.ConnectAsync(server.LocalEndPoint))
        {
            await raw.SendAsync(Hello());
            await raw.ReadFrameAsync();
            await raw.SendAsync(Request(10, 0, [0]));
            await raw.SendAsync(Frame(GridFrameType.Cancel, 10, []));
            await raw.SendAsync(Request(11, 0, [5]));
            Assert.Equal(11UL, (await raw.ReadFrameAsync())!.Value.Header.CorrelationId);
            gate.SetResult();
            await EventuallyAsync(() => server.InflightRequestCount == 0, "the cancelled handler has returned");
            await raw.SendAsync(Frame(GridFrameType.Ping, 99, []));
            var next = (await raw.ReadFrameAsync())!.Value.Header;
            Assert.Equal((GridFrameType.Pong, 99UL), (next.Type, next.CorrelationId));
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task TheClientDropsAnswersToCallsItNoLongerWaitsFor()
    {
        using var fake = new RawListener();
        var accept = fake.AcceptAsync();
        var connect = GridConnection.ConnectAsync(fake.EndPoint, GridConnectionOptions.Default);
        await using var silo = await accept;
        await silo.ReadFrameAsync();
        await silo.SendAsync(RawListener.HelloAck());
        await using var connection = await connect.WaitAsync(Bound);

        var timedOut = connection.CallAsync(new byte[] { 1 }, TimeSpan.FromMilliseconds(50));
        var request = (await silo.ReadFrameAsync())!.Value.Header;
        Assert.Equal(GridErrorCode.Timeout, (await Assert.ThrowsAsync<GridException>(() => timedOut.WaitAsync(Bound))).Code);
        var cancel = (await silo.ReadFrameAsync())!.Value.Header;
        Assert.Equal((GridFrameType.Cancel, request.CorrelationId), (cancel.Type, cancel.CorrelationId));

        // The fake silo answers anyway (late Response, then a late Error, then an answer to an id never used).
        await silo.SendAsync(Frame(GridFrameType.Response, request.CorrelationId, [42]));
        using (var e = GridErrorPayload.Encode(GridErrorCode.Conflict, "late", null))
            await silo.SendAsync(Frame(GridFrameType.Error, request.CorrelationId, e.WrittenSpan));
        await silo.SendAsync(Frame(GridFrameType.Response, 123_456, [1]));

        var next = connection.CallAsync(new byte[] { 2 }, TimeSpan.FromSeconds(10));
        var nextRequest = (await silo.ReadFrameAsync())!.Value.Header;
        await silo.SendAsync(Frame(GridFrameType.Response, nextRequest.CorrelationId, [7]));
        using var ok = await next.WaitAsync(Bound);
        Assert.Equal(7, ok.Payload.Span[0]);
        Assert.True(connection.IsConnected);
        Assert.Equal(0, connection.PendingCallCount);
    }

    [Fact]
    public void OptionsAreValidatedWithMessagesNamingTheSetting()
    {
        static GridException Fails(Action a) => Assert.Throws<GridException>(a);
        Assert.Contains("MaxFrameSize", Fails(() => new GridConnectionOptions { MaxFrameSize = 10 }.Validate()).Message);
        Assert.Contains("KeepAliveTimeout", Fails(() => new GridConnectionOptions { KeepAliveTimeout = TimeSpan.FromSeconds(1) }.Validate()).Message);
        Assert.Contains("PeerName", Fails(() => new GridConnectionOptions { PeerName = "" }.Validate()).Message);
        Assert.Contains("PeerName", Fails(() => new GridConnectionOptions { PeerName = new string('x', 300) }.Validate()).Message);
        Assert.Contains("ConnectTimeout", Fails(() => new GridConnectionOptions { ConnectTimeout = TimeSpan.Zero }.Validate()).Message);
        Assert.Contains("MaxConcurrentRequestsPerConnection", Fails(() => new GridServerOptions { MaxConcurrentRequestsPerConnection = 0 }.Validate()).Message);
        Assert.Contains("HandshakeTimeout", Fails(() => new GridServerOptions { HandshakeTimeout = TimeSpan.FromSeconds(-1) }.Validate()).Message);
        Assert.Contains("MaxBufferedSendBytes", Fails(() => new GridServerOptions { MaxBufferedSendBytes = 1 }.Validate()).Message);
        Assert.All(new[]
        {
            Fails(() => new GridConnectionOptions { MaxFrameSize = 10 }.Validate()),
            Fails(() => new GridServerOptions { MaxConnections = 0 }.Validate()),
        }, e => Assert.Equal(GridErrorCode.InvalidArgument, e.Code));
        new GridConnectionOptions { KeepAliveInterval = Timeout.InfiniteTimeSpan, KeepAliveTimeout = TimeSpan.Zero }.Validate();
        GridServerOptions.Default.Validate();
        GridConnectionOptions.Default.Validate();
    }

    [Fact(Timeout = 60_000)]
    public async Task InvalidCallArgumentsAreRefused()
    {
        await using var server = StartServer(DelegateHandler.Echo);
        await using var connection = await ConnectAsync(server);
        Assert.Equal(GridErrorCode.InvalidArgument,
            (await Assert.ThrowsAsync<GridException>(() => connection.CallAsync(new byte[1], TimeSpan.Zero))).Code);
        Assert.Equal(GridErrorCode.InvalidArgument,
            (await Assert.ThrowsAsync<GridException>(() => connection.CallAsync(new byte[1], TimeSpan.FromDays(30)))).Code);
        using var infinite = await connection.CallAsync(new byte[1], Timeout.InfiniteTimeSpan);
        Assert.Equal(1, infinite.Length);
    }

    [Fact(Timeout = 60_000)]
    public async Task RequestContextCarriesThePeerAndTheDeadline()
    {
        var seen = new ConcurrentBag<GridRequestContext>();
        var handler = new DelegateHandler((_, context, _) =>
        {
            seen.Add(context);
            return ValueTask.CompletedTask;
        });
        await using var server = StartServer(handler);
        await using var connection = await ConnectAsync(server, new GridConnectionOptions { PeerName = "ctx-client" });
        (await connection.CallAsync(new byte[1], TimeSpan.FromSeconds(7))).Dispose();
        (await connection.CallAsync(new byte[1], Timeout.InfiniteTimeSpan)).Dispose();
        var contexts = seen.OrderBy(c => c.CorrelationId).ToArray();
        Assert.All(contexts, c => Assert.Equal("ctx-client", c.Peer.Name));
        Assert.All(contexts, c => Assert.Equal(GridPeerRole.Client, c.Peer.Role));
        Assert.Equal(TimeSpan.FromSeconds(7), contexts[0].Timeout);
        Assert.Null(contexts[1].Timeout);
        Assert.Null(contexts[1].RemainingTime);
    }
}
