using Rustorium.Grid.Crypto;
using Rustorium.Grid.Crypto.Smt;
using static Rustorium.Grid.Storage.Tests.StoreTestKit;

namespace Rustorium.Grid.Storage.Tests;

public sealed class SmtNodeCacheTests
{
    private static SmtNode N(ulong i) => SmtNode.Leaf(F(i), F(i + 1));

    [Fact]
    public void EvictsTheLeastRecentlyUsed()
    {
        var cache = new SmtNodeCache(3);
        cache.Set(F(1), N(1));
        cache.Set(F(2), N(2));
        cache.Set(F(3), N(3));
        Assert.True(cache.TryGet(F(1), out _)); // 1 is now the most recent; 2 the least
        cache.Set(F(4), N(4));
        Assert.False(cache.TryGet(F(2), out _));
        Assert.True(cache.TryGet(F(3), out var n3));
        Assert.Equal(N(3), n3);
        Assert.Equal(3, cache.Count);
    }

    [Fact]
    public void BehavesLikeAReferenceLruUnderRandomUse()
    {
        var rng = new Random(5);
        var cache = new SmtNodeCache(16);
        var model = new LinkedList<ulong>(); // front = most recent
        for (int step = 0; step < 20_000; step++)
        {
            ulong k = (ulong)rng.Next(40);
            switch (rng.Next(3))
            {
                case 0:
                    bool hit = cache.TryGet(F(k), out var node);
                    Assert.Equal(model.Contains(k), hit);
                    if (hit)
                    {
                        Assert.Equal(N(k), node);
                        model.Remove(k);
                        model.AddFirst(k);
                    }
                    break;
                case 1:
                    cache.Set(F(k), N(k));
                    model.Remove(k);
                    model.AddFirst(k);
                    if (model.Count > 16) model.RemoveLast();
                    break;
                default:
                    cache.Remove(F(k));
                    model.Remove(k);
                    break;
            }
            Assert.Equal(model.Count, cache.Count);
        }
        foreach (var k in model) Assert.True(cache.TryGet(F(k), out _));
    }
}
