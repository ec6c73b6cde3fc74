using System.Numerics;
using System.Text.Json.Nodes;
using Rustorium.Grid.Crypto.Smt;
using Xunit.Abstractions;

namespace Rustorium.Grid.Crypto.Tests.CrossCheck;

/// <summary>
/// The sparse Merkle tree against circomlibjs 0.1.7's <c>newMemEmptyTrie()</c>: the root after every
/// operation of random sequences, the rejection of invalid operations, ApplyBatch against the same changes
/// applied one at a time, and proofs (smt.find and the SMTVerifier input) at the end of each sequence.
/// </summary>
/// <remarks>circomlibjs hashes about 12,000 Poseidons a second here, so the sizes below are set to keep the
/// whole cross-check near half a minute; our side replays concurrently on the other core.</remarks>
[Collection(CircomlibjsCollection.Name)]
[Trait("Category", "CrossCheck")]
public sealed class SmtCrossCheckTests(CircomlibjsReference reference, ITestOutputHelper output)
{
    private static readonly TimeSpan ReferenceDeadline = TimeSpan.FromSeconds(90);

    /// <summary>SMTVerifier levels for the batch test's proofs.</summary>
    private const int BatchProofLevels = 64;

    [Fact(Timeout = 240_000)]
    public Task RootsMatchAfterEveryOperationOnSmallKeySets() =>
        CheckSequencesAsync(salt: 1, nLevels: 64, random =>
        {
            var scenarios = new List<SmtScenario>();
            foreach (int size in new[] { 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24 })
            {
                var pool = SmtKeyPools.Uniform(random, size);
                var s = new SmtScenario($"{size} random key(s)", random);
                for (int i = 0; i < 100; i++) s.RandomOp(pool, invalid: 0.08);
                s.ChooseProofs(pool);
                scenarios.Add(s);
            }
            return scenarios;
        });

    [Fact(Timeout = 240_000)]
    public Task RootsMatchAfterEveryOperationWhenKeysShareLowBits() =>
        CheckSequencesAsync(salt: 2, nLevels: 48, random =>
        {
            var scenarios = new List<SmtScenario>();
            foreach (int bits in new[] { 8, 10, 12, 14, 16 })
            {
                foreach (int patterns in new[] { 1, 3 })
                {
                    var pool = SmtKeyPools.SharedLowBits(random, 24 + random.Random.Next(24), bits, patterns);
                    var s = new SmtScenario($"keys sharing the low {bits} bits ({patterns} pattern(s))", random);
                    for (int i = 0; i < 100; i++) s.RandomOp(pool, invalid: 0.05, insertBias: i < 50 ? 0.7 : 0.35);
                    s.ChooseProofs(pool);
                    scenarios.Add(s);
                }
            }
            return scenarios;
        });

    [Fact(Timeout = 240_000)]
    public Task RootsMatchOnEdgeKeysAndTheDeepestPaths() =>
        CheckSequencesAsync(salt: 3, nLevels: SparseMerkleTree.MaxDepth, random =>
        {
            var pool = SmtKeyPools.Edges(random);
            var scenarios = new List<SmtScenario>();

            // 0 and 2^253 share 253 low bits: their leaves sit at the deepest level a BN254 tree has.
            var deepest = new SmtScenario("0 and 2^253 (deepest split), then their neighbours", random);
            deepest.Add("insert", BigInteger.Zero, random.Element());
            deepest.Add("insert", BigInteger.One << 253, random.Element());
            deepest.Add("insert", (BigInteger.One << 253) + 1, random.Element());
            deepest.Add("insert", BigInteger.One << 252, random.Element());
            deepest.Add("update", BigInteger.Zero, random.Element());
            deepest.Add("delete", BigInteger.One << 253, 0);
            deepest.Add("delete", BigInteger.Zero, 0);
            deepest.Add("insert", Fr.Modulus - 1, random.Element());
            deepest.Add("insert", BigInteger.Zero, BigInteger.Zero);
            deepest.ChooseProofs(pool);
            scenarios.Add(deepest);

            // Proofs of depth 254 fit no SMTVerifier (it needs a zero last sibling): both sides must say so.
            var deepProofs = new SmtScenario("0 and 2^253 only (proofs of depth 254)", random);
            deepProofs.Add("insert", BigInteger.Zero, random.Element());
            deepProofs.Add("insert", BigInteger.One << 253, random.Element());
            deepProofs.ChooseProofs(pool, present: 2, absent: 3);
            scenarios.Add(deepProofs);

            for (int n = 0; n < 3; n++)
            {
                var s = new SmtScenario($"edge keys #{n + 1}", random);
                for (int i = 0; i < 80; i++) s.RandomOp(pool, invalid: 0.05, insertBias: i < 40 ? 0.75 : 0.3);
                s.ChooseProofs(pool, present: 10, absent: 6);
                scenarios.Add(s);
            }
            return scenarios;
        });

    [Fact(Timeout = 240_000)]
    public Task RootsMatchThroughALongSequenceThatFillsAndEmptiesTheTree() =>
        CheckSequencesAsync(salt: 4, nLevels: 64, random =>
        {
            var pool = SmtKeyPools.Uniform(random, 1000);
            pool.AddRange(SmtKeyPools.SharedLowBits(random, 300, bits: 8, patterns: 4));
            var s = new SmtScenario("~2,000 operations: grow to ~900 keys, then delete every key", random);
            for (int i = 0; i < 1350; i++) s.RandomOp(pool, invalid: 0.02, insertBias: 0.85);
            while (s.PresentCount > 0)
            {
                // Shrink: deletes mostly, some updates and invalid operations on the way.
                var present = s.PresentKeys.ToList();
                var key = present[random.Random.Next(present.Count)];
                if (random.Random.Next(10) == 0) s.RandomOp(pool, invalid: 0.3, insertBias: 0.2);
                else s.Add("delete", key, 0);
            }
            s.ChooseProofs(pool);
            return [s];
        });

    [Fact(Timeout = 240_000)]
    public async Task ApplyBatchMatchesTheSameChangesAppliedOneAtATime()
    {
        foreach (int seed in CrossCheckSeeds.All)
        {
            var random = new CrossCheckRandom(unchecked(seed * 31 + 5));
            var pool = SmtKeyPools.SharedLowBits(random, 160, bits: 8, patterns: 3);
            pool.AddRange(SmtKeyPools.Uniform(random, 80));
            var scenario = BuildBatches(random, pool, batches: 40);
            scenario.ChooseProofs(pool);

            var (ours, results, timing) = await CrossCheckClock.BothAsync(
                () => reference.SmtAsync([scenario.ToReferenceCase(BatchProofLevels)], ReferenceDeadline), () => ReplayBatches(scenario));
            var theirs = results[0];
            output.WriteLine($"{CrossCheckSeeds.Describe(seed)}: {scenario.Batches.Count} batches, {scenario.Ops.Count} changes, " +
                             $"{scenario.Batches.Count(b => b.Plan.ExpectedError is not null)} rejected; {timing}");

            var failures = new List<string>();
            for (int i = 0; i < scenario.Ops.Count; i++)
            {
                if (theirs.Errors[i] is { } e) failures.Add($"test bug: change {i} ({Show(scenario.Ops[i])}) of a valid batch failed in circomlibjs: {e}");
            }
            for (int b = 0; b < scenario.Batches.Count && failures.Count < 10; b++)
            {
                var (lastOp, plan) = scenario.Batches[b];
                string expectedRoot = lastOp < 0 ? "0" : theirs.Roots[lastOp];
                string expectedOutcome = plan.ExpectedError is { } code ? $"rejected with {code}" : "applied";
                if (ours[b].Outcome != expectedOutcome || ours[b].Root != expectedRoot)
                {
                    failures.Add($"batch {b} of {plan.Changes.Count} change(s) [{string.Join(", ", plan.Changes.Take(8).Select(c => $"{c.Op} {Short(c.Key)}"))}" +
                                 $"{(plan.Changes.Count > 8 ? ", …" : "")}]: ours {ours[b].Outcome}, root {ours[b].Root}; " +
                                 $"expected {expectedOutcome}, root {expectedRoot} (circomlibjs, one change at a time)");
                }
            }
            CompareProofs(scenario, ours[^1].Proofs, theirs.Proofs, failures);
            Assert.True(failures.Count == 0, Report(seed, failures));
        }
    }

    // ------------------------------------------------------------------ sequences

    private async Task CheckSequencesAsync(int salt, int nLevels, Func<CrossCheckRandom, List<SmtScenario>> build)
    {
        foreach (int seed in CrossCheckSeeds.All)
        {
            var scenarios = build(new CrossCheckRandom(unchecked(seed * 31 + salt)));
            var (ours, theirs, timing) = await CrossCheckClock.BothAsync(
                () => reference.SmtAsync(scenarios.Select(s => s.ToReferenceCase(nLevels)).ToArray(), ReferenceDeadline),
                () => scenarios.Select(s => Replay(s, nLevels)).ToArray());
            output.WriteLine($"{CrossCheckSeeds.Describe(seed)}: {scenarios.Count} sequences, {scenarios.Sum(s => s.Ops.Count)} operations, " +
                             $"{scenarios.Sum(s => s.Prove.Count)} proofs; {timing}");

            var failures = new List<string>();
            for (int i = 0; i < scenarios.Count; i++) CompareSequence(scenarios[i], ours[i], theirs[i], failures);
            Assert.True(failures.Count == 0, Report(seed, failures));
        }
    }

    private sealed record OurSequence(string[] Roots, string?[] Errors, OurProof[] Proofs);

    /// <summary>Our proof in the reference's terms, and our SMTVerifier input as fields (null: it does not fit the circuit).</summary>
    private sealed record OurProof(SmtReferenceProof Proof, List<(string Name, string Value)>? CircomInput);

    private static OurSequence Replay(SmtScenario scenario, int nLevels)
    {
        var tree = new SparseMerkleTree();
        var roots = new string[scenario.Ops.Count];
        var errors = new string?[scenario.Ops.Count];
        for (int i = 0; i < scenario.Ops.Count; i++)
        {
            var op = scenario.Ops[i];
            var key = Fr.Parse(op.Key);
            var value = Fr.Parse(op.Value);
            errors[i] = Outcome(() =>
            {
                switch (op.Op)
                {
                    case "insert": tree.Insert(key, value); break;
                    case "update": tree.Update(key, value); break;
                    case "delete": tree.Delete(key); break;
                    case "upsert": tree.Upsert(key, value); break;
                    default: throw new InvalidOperationException($"test bug: unknown op {op.Op}");
                }
            });
            roots[i] = tree.Root.ToString();
        }
        return new OurSequence(roots, errors, scenario.Prove.Select(k => ProveOurs(tree, k, nLevels)).ToArray());
    }

    /// <summary>Null on success, the reference's word for an expected rejection, or a description of anything else.</summary>
    private static string? Outcome(Action action)
    {
        try
        {
            action();
            return null;
        }
        catch (SmtException e) when (e.Code == SmtErrorCode.KeyExists)
        {
            return "exists";
        }
        catch (SmtException e) when (e.Code == SmtErrorCode.KeyNotFound)
        {
            return "missing";
        }
        catch (Exception e)
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
    }

    private static void CompareSequence(SmtScenario scenario, OurSequence ours, SmtReferenceResult theirs, List<string> failures)
    {
        for (int i = 0; i < scenario.Ops.Count; i++)
        {
            if (ours.Roots[i] == theirs.Roots[i] && ours.Errors[i] == theirs.Errors[i]) continue;
            var history = string.Join("; ", Enumerable.Range(Math.Max(0, i - 6), Math.Min(i, 6)).Select(j => Show(scenario.Ops[j])));
            failures.Add($"{scenario.Name}: operation {i} of {scenario.Ops.Count}, {Show(scenario.Ops[i])}: " +
                         $"ours root {ours.Roots[i]} ({ours.Errors[i] ?? "ok"}), circomlibjs root {theirs.Roots[i]} ({theirs.Errors[i] ?? "ok"}); " +
                         $"the operations before it: {(history.Length == 0 ? "none" : history)}");
            return; // later roots follow from this one
        }
        CompareProofs(scenario, ours.Proofs, theirs.Proofs, failures);
    }

    // ------------------------------------------------------------------ batches

    private static SmtScenario BuildBatches(CrossCheckRandom random, List<BigInteger> pool, int batches)
    {
        var s = new SmtScenario("random batches", random);
        var rng = random.Random;
        for (int b = 0; b < batches; b++)
        {
            int size = rng.Next(6) switch { 0 => rng.Next(3), 1 => 1 + rng.Next(4), _ => 1 + rng.Next(48) };
            if (b < 3) size = 8 + rng.Next(40); // start with some content
            var keys = pool.OrderBy(_ => rng.Next()).Take(size).ToList();
            var changes = new List<(string Op, BigInteger Key, BigInteger Value)>();
            foreach (var key in keys)
            {
                string op = s.IsPresent(key)
                    ? rng.Next(3) switch { 0 => "update", 1 => "delete", _ => "upsert" }
                    : rng.Next(3) == 0 ? "upsert" : "insert";
                changes.Add((op, key, op == "delete" ? BigInteger.Zero : s.Value(key)));
            }

            SmtErrorCode? error = null;
            if (b >= 3 && rng.Next(7) == 0)
            {
                // Plant exactly one fault: the whole batch must be rejected and the tree left as it was.
                var outside = pool.Where(k => !keys.Contains(k)).ToList();
                switch (rng.Next(3))
                {
                    case 0 when changes.Count > 0:
                        var twin = changes[rng.Next(changes.Count)];
                        changes.Insert(rng.Next(changes.Count + 1), ("upsert", twin.Key, random.Element()));
                        error = SmtErrorCode.DuplicateKeyInBatch;
                        break;
                    case 1 when outside.Any(s.IsPresent):
                        var present = outside.Where(s.IsPresent).ToList();
                        changes.Insert(rng.Next(changes.Count + 1), ("insert", present[rng.Next(present.Count)], random.Element()));
                        error = SmtErrorCode.KeyExists;
                        break;
                    default:
                        var absent = outside.Where(k => !s.IsPresent(k)).ToList();
                        if (absent.Count == 0) break;
                        changes.Insert(rng.Next(changes.Count + 1), (rng.Next(2) == 0 ? "update" : "delete", absent[rng.Next(absent.Count)], BigInteger.Zero));
                        error = SmtErrorCode.KeyNotFound;
                        break;
                }
            }

            if (error is null)
            {
                foreach (var c in changes) s.Add(c.Op, c.Key, c.Value);
            }
            s.Batches.Add((s.Ops.Count - 1, new BatchPlan(changes, error)));
        }
        return s;
    }

    private sealed record OurBatch(string Outcome, string Root, OurProof[] Proofs);

    private static OurBatch[] ReplayBatches(SmtScenario scenario)
    {
        var tree = new SparseMerkleTree();
        var results = new OurBatch[scenario.Batches.Count];
        for (int b = 0; b < results.Length; b++)
        {
            var plan = scenario.Batches[b].Plan;
            var changes = plan.Changes.Select(c => new SmtChange(
                c.Op switch { "insert" => SmtOp.Insert, "update" => SmtOp.Update, "delete" => SmtOp.Delete, _ => SmtOp.Upsert },
                Fr.FromBigInteger(c.Key), Fr.FromBigInteger(c.Value))).ToArray();
            string outcome;
            try
            {
                tree.ApplyBatch(changes);
                outcome = "applied";
            }
            catch (SmtException e)
            {
                outcome = $"rejected with {e.Code}";
            }
            catch (Exception e)
            {
                outcome = $"threw {e.GetType().Name}: {e.Message}";
            }
            var proofs = b == results.Length - 1 ? scenario.Prove.Select(k => ProveOurs(tree, k, BatchProofLevels)).ToArray() : [];
            results[b] = new OurBatch(outcome, tree.Root.ToString(), proofs);
        }
        return results;
    }

    // ------------------------------------------------------------------ proofs

    private static OurProof ProveOurs(SparseMerkleTree tree, string key, int nLevels)
    {
        var proof = tree.Prove(Fr.Parse(key));
        var found = proof.Exists;
        var reference = new SmtReferenceProof(
            key,
            found,
            proof.Siblings.Select(s => s.ToString()).ToArray(),
            found ? proof.Value.ToString() : null,
            // circomlibjs reports the looked-up key itself (value 0) when the path ends in an empty branch.
            found ? null : proof.IsOld0 ? key : proof.OldKey.ToString(),
            found ? null : proof.IsOld0 ? "0" : proof.OldValue.ToString(),
            proof.IsOld0,
            CircomInput: null);
        try
        {
            return new OurProof(reference, Fields(JsonNode.Parse(proof.ToCircomInputJson(nLevels))!.AsObject()));
        }
        catch (ArgumentException)
        {
            return new OurProof(reference, null); // does not fit SMTVerifier(nLevels)
        }
    }

    private static void CompareProofs(SmtScenario scenario, IReadOnlyList<OurProof> ours, SmtReferenceProof[] theirs, List<string> failures)
    {
        for (int i = 0; i < theirs.Length; i++)
        {
            string key = Short(theirs[i].Key);
            if (FirstDifference(Fields(ours[i].Proof), Fields(theirs[i])) is { } d)
                failures.Add($"{scenario.Name}: proof of key {key} (depth {theirs[i].Siblings.Length}): {d}");

            var theirInput = theirs[i].CircomInput is { } input ? Fields(input) : null;
            if (theirInput is null != ours[i].CircomInput is null)
                failures.Add($"{scenario.Name}: SMTVerifier input for key {key} (depth {theirs[i].Siblings.Length}): " +
                             $"{(theirInput is null ? "ours made one, but it does not fit the circuit" : "ours refused to make one, but it fits")}");
            else if (theirInput is not null && FirstDifference(ours[i].CircomInput!, theirInput) is { } c)
                failures.Add($"{scenario.Name}: SMTVerifier input for key {key}: {c}");
        }
    }

    /// <summary>A proof as named fields, one per sibling, so a difference can be reported by name.</summary>
    private static List<(string Name, string Value)> Fields(SmtReferenceProof p)
    {
        List<(string, string)> fields =
        [
            ("found", p.Found.ToString()), ("isOld0", p.IsOld0.ToString()), ("foundValue", p.FoundValue ?? "-"),
            ("notFoundKey", p.NotFoundKey ?? "-"), ("notFoundValue", p.NotFoundValue ?? "-"), ("siblings.length", p.Siblings.Length.ToString()),
        ];
        fields.AddRange(p.Siblings.Select((s, i) => ($"siblings[{i}]", s)));
        return fields;
    }

    /// <summary>A circom input object as named fields in name order; numbers and numeric strings alike as decimal text.</summary>
    private static List<(string Name, string Value)> Fields(JsonObject input)
    {
        var fields = new List<(string, string)>();
        foreach (var (name, value) in input.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (value is JsonArray array)
            {
                fields.Add(($"{name}.length", array.Count.ToString()));
                fields.AddRange(array.Select((v, i) => ($"{name}[{i}]", Scalar(v))));
            }
            else
            {
                fields.Add((name, Scalar(value)));
            }
        }
        return fields;
    }

    private static string Scalar(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue(out string? s) ? s : node?.ToJsonString() ?? "null";

    private static string? FirstDifference(List<(string Name, string Value)> ours, List<(string Name, string Value)> theirs)
    {
        for (int i = 0; i < Math.Max(ours.Count, theirs.Count); i++)
        {
            var o = i < ours.Count ? ours[i] : (Name: "(end)", Value: "");
            var t = i < theirs.Count ? theirs[i] : (Name: "(end)", Value: "");
            if (o != t) return o.Name == t.Name ? $"{o.Name}: ours {o.Value}, circomlibjs {t.Value}" : $"field {i}: ours {o.Name}={o.Value}, circomlibjs {t.Name}={t.Value}";
        }
        return null;
    }

    // ------------------------------------------------------------------ messages

    private static string Show(SmtReferenceOp op) =>
        op.Op == "delete" ? $"delete {Short(op.Key)}" : $"{op.Op} {Short(op.Key)} = {Short(op.Value)}";

    private static string Short(BigInteger value) => Short(SmtScenario.Decimal(value));

    private static string Short(string value) => value.Length <= 24 ? value : $"{value[..10]}…{value[^10..]}";

    private static string Report(int seed, List<string> failures) =>
        $"{CrossCheckSeeds.Describe(seed)}: {failures.Count} difference(s) from circomlibjs 0.1.7:\n" +
        string.Join("\n", failures.Take(10)) + (failures.Count > 10 ? $"\n… and {failures.Count - 10} more" : "");
}
