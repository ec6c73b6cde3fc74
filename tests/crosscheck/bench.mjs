// circomlibjs 0.1.7 speed on this machine, as the yardstick for `grid bench poseidon|smt`.
//
//   node bench.mjs [--seconds S] [--leaves N] [--inserts M] [--json]
//
// poseidon: Poseidon(2) with the wasm build (buildPoseidon), chained h = Poseidon(h, x) so every call
//           depends on the previous one, for S seconds (default 3) after a short warm-up. One thread: node
//           runs JavaScript on one core and buildPoseidon asks ffjavascript for a single-threaded curve.
// smt:      N (default 10,000) inserts of distinct pseudo-random keys into newMemEmptyTrie(); the last M
//           (default 1,000) are timed, so the rate is that of a tree of about N keys (N−M growing to N),
//           the same window as `grid bench smt --leaves N−M --inserts M`. The in-memory database and the
//           key lookups are part of what an insert costs. The whole fill's rate is reported too.
// --json prints {"poseidon":{"hashesPerSecond":...},"smt":{"leaves":...,"insertsPerSecond":...}} only.

import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { buildPoseidon, newMemEmptyTrie } from "circomlibjs";

const { values: args } = parseArgs({
    options: {
        seconds: { type: "string", default: "3" },
        leaves: { type: "string", default: "10000" },
        inserts: { type: "string", default: "1000" },
        json: { type: "boolean", default: false },
    },
});
const seconds = Number(args.seconds);
const leaves = Number.parseInt(args.leaves, 10);
const inserts = Number.parseInt(args.inserts, 10);
if (!(seconds > 0) || !(leaves > 0) || !(inserts > 0) || inserts > leaves) {
    throw new Error("--seconds, --leaves and --inserts must be positive, with --inserts at most --leaves");
}

const poseidon = await buildPoseidon();
const F = poseidon.F;

function poseidonRate(durationMs) {
    let h = F.e(1n);
    const x = F.e(2n);
    let n = 0;
    const start = performance.now();
    let now = start;
    while (now - start < durationMs) {
        // Check the clock every 1,000 hashes so reading it costs nothing measurable.
        for (let i = 0; i < 1000; i++) h = poseidon([h, x]);
        n += 1000;
        now = performance.now();
    }
    if (F.isZero(h)) throw new Error("unreachable: keeps the chain alive");
    return (n * 1000) / (now - start);
}

async function smtRates(count, timed) {
    // Distinct keys spread over the whole field, like hashed keys: a cheap 64-bit LCG stretched to 253 bits.
    let s = 0x9e3779b97f4a7c15n;
    const next64 = () => (s = (s * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn);
    const keys = [];
    for (let i = 0; i < count; i++) {
        keys.push(((next64() << 189n) ^ (next64() << 125n) ^ (next64() << 61n) ^ next64()) & ((1n << 253n) - 1n));
    }
    const tree = await newMemEmptyTrie();
    const start = performance.now();
    for (let i = 0; i < count - timed; i++) await tree.insert(keys[i], BigInt(i));
    const window = performance.now();
    for (let i = count - timed; i < count; i++) await tree.insert(keys[i], BigInt(i));
    const end = performance.now();
    return { insertsPerSecond: (timed * 1000) / (end - window), fillInsertsPerSecond: (count * 1000) / (end - start) };
}

poseidonRate(Math.min(500, seconds * 1000)); // warm-up: wasm tiers up, allocator settles
const hashesPerSecond = poseidonRate(seconds * 1000);
const smt = await smtRates(leaves, inserts);

if (args.json) {
    console.log(JSON.stringify({
        poseidon: { arity: 2, seconds, hashesPerSecond: Math.round(hashesPerSecond) },
        smt: {
            leaves,
            inserts,
            insertsPerSecond: Math.round(smt.insertsPerSecond),
            fillInsertsPerSecond: Math.round(smt.fillInsertsPerSecond),
        },
    }));
} else {
    const n = (x) => Math.round(x).toLocaleString("en-US");
    console.log(`circomlibjs 0.1.7 (node ${process.version}), one thread`);
    console.log(`  Poseidon(2), wasm:  ${n(hashesPerSecond)} hashes/s`);
    console.log(`  SMT insert:         ${n(smt.insertsPerSecond)} inserts/s at ${n(leaves - inserts)}..${n(leaves)} keys ` +
        `(${n(smt.fillInsertsPerSecond)} inserts/s over all ${n(leaves)} from empty)`);
}
process.exit(0);
