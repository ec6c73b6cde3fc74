// circomlibjs 0.1.7 as the reference for Rustorium Grid's Poseidon, PoseidonBytes and sparse Merkle tree.
//
// Protocol: JSON lines. Every line on stdin is one request; every request gets exactly one line on stdout,
// in order, carrying the request's "id". One request holds a whole batch of cases, so thousands of cases
// cost one node start-up and one wasm initialisation (about a second) instead of one each. The process
// lives until stdin closes, so a test run can keep it for all its requests.
//
//   {"id":1,"kind":"poseidon","cases":[["1","2"],["0"],...]}
//     -> {"id":1,"results":["<decimal>",...]}              Poseidon (wasm buildPoseidon) of each list
//   {"id":2,"kind":"bytes","cases":["", "00ff", ...]}
//     -> {"id":2,"results":["<decimal>",...]}              PoseidonBytes of each hex string
//   {"id":3,"kind":"smt","cases":[{"ops":[{"op":"insert","key":"5","value":"7"},...],"prove":["5","9"]}]}
//     -> {"id":3,"results":[{"roots":[...],"errors":[...],"proofs":[...]}]}
//        one fresh empty trie (what newMemEmptyTrie() returns) per case; roots[i] is the root after ops[i]
//        (decimal); errors[i] is null, "exists" (insert of a present key) or "missing" (update/delete of an
//        absent key), and a failed operation leaves the tree as it was. op "upsert" is insert-or-update.
//        proofs[j] is smt.find(prove[j]) on the final tree: {found, siblings, foundValue, notFoundKey,
//        notFoundValue, isOld0}, field elements as decimals, siblings without padding. With "nLevels": n in the case, each
//        proof also carries "circomInput": the SMTVerifier(n) input built exactly as circomlib's own
//        test/smtverifier.js builds it from smt.find (siblings zero-padded to n, all values decimal strings),
//        or null when the proof does not fit SMTVerifier(n).
//   A request that cannot be served answers {"id":...,"error":"<message>"} and the process goes on.
//
// Run by hand: echo '{"id":1,"kind":"poseidon","cases":[["1","2"]]}' | node reference.mjs

import { createInterface } from "node:readline";
import { buildPoseidon, newMemEmptyTrie, SMT, SMTMemDb } from "circomlibjs";

const poseidon = await buildPoseidon();
const F = poseidon.F;
const dec = (e) => F.toObject(e).toString();

// newMemEmptyTrie() rebuilds the Poseidon wasm on every call (~0.8 s here). Each case gets what it returns,
// an SMT over a fresh SMTMemDb starting at root 0, but with the hash functions of one call made up front.
const template = await newMemEmptyTrie();
const emptyTrie = () => new SMT(new SMTMemDb(template.F), template.F.zero, template.hash0, template.hash1, template.F);

function poseidonCases(cases) {
    return cases.map((inputs) => dec(poseidon(inputs.map((x) => BigInt(x)))));
}

// PoseidonBytes, written straight from its definition (src/Rustorium.Grid.Crypto/Poseidon/PoseidonBytes.cs):
// L = byte length; 31-byte chunks, the last zero-padded on the right, each read big-endian;
// h = Poseidon(L, c0..c14); then h = Poseidon(h, next <= 15 chunks) while chunks remain.
const CHUNK = 31;
const PER_BLOCK = 15;

function poseidonBytes(hex) {
    if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error(`not a hex string: ${hex}`);
    const bytes = Buffer.from(hex, "hex");
    const chunks = [];
    for (let o = 0; o < bytes.length; o += CHUNK) {
        const chunk = Buffer.alloc(CHUNK);
        bytes.copy(chunk, 0, o, Math.min(o + CHUNK, bytes.length));
        chunks.push(BigInt("0x" + (chunk.toString("hex") || "0")));
    }
    let h = poseidon([BigInt(bytes.length), ...chunks.slice(0, PER_BLOCK)]);
    for (let i = PER_BLOCK; i < chunks.length; i += PER_BLOCK) {
        h = poseidon([h, ...chunks.slice(i, i + PER_BLOCK)]);
    }
    return dec(h);
}

async function smtCase({ ops, prove = [], nLevels = null }) {
    const tree = emptyTrie();
    const roots = [];
    const errors = [];
    for (const { op, key, value } of ops) {
        const k = BigInt(key);
        let error = null;
        // Probe first: circomlibjs' update() of an absent key does not throw, it corrupts the tree.
        const { found } = await tree.find(k);
        switch (op) {
            case "insert":
                if (found) error = "exists";
                else await tree.insert(k, BigInt(value));
                break;
            case "update":
                if (!found) error = "missing";
                else await tree.update(k, BigInt(value));
                break;
            case "delete":
                if (!found) error = "missing";
                else await tree.delete(k);
                break;
            case "upsert":
                if (found) await tree.update(k, BigInt(value));
                else await tree.insert(k, BigInt(value));
                break;
            default:
                throw new Error(`unknown smt op: ${op}`);
        }
        roots.push(dec(tree.root));
        errors.push(error);
    }
    const proofs = [];
    for (const key of prove) {
        const r = await tree.find(BigInt(key));
        const proof = {
            key,
            found: r.found,
            siblings: r.siblings.map(dec),
            foundValue: r.found ? dec(r.foundValue) : null,
            notFoundKey: r.found ? null : dec(r.notFoundKey),
            notFoundValue: r.found ? null : dec(r.notFoundValue),
            isOld0: r.isOld0,
        };
        if (nLevels !== null) proof.circomInput = circomInput(tree, key, proof, nLevels);
        proofs.push(proof);
    }
    return { roots, errors, proofs };
}

// circomlib test/smtverifier.js: testInclusion (fnc 0) and testExclusion (fnc 1).
function circomInput(tree, key, proof, nLevels) {
    // circomlib's SMTLevIns constrains the last of the nLevels siblings to be 0, so a proof with d siblings
    // needs nLevels >= d + 1.
    if (proof.siblings.length >= nLevels) return null;
    const siblings = [...proof.siblings];
    while (siblings.length < nLevels) siblings.push("0");
    const excluded = !proof.found;
    return {
        enabled: "1",
        fnc: excluded ? "1" : "0",
        root: dec(tree.root),
        siblings,
        oldKey: excluded && !proof.isOld0 ? proof.notFoundKey : "0",
        oldValue: excluded && !proof.isOld0 ? proof.notFoundValue : "0",
        isOld0: excluded && proof.isOld0 ? "1" : "0",
        key: BigInt(key).toString(),
        value: excluded ? "0" : proof.foundValue,
    };
}

async function serve(request) {
    switch (request.kind) {
        case "poseidon":
            return poseidonCases(request.cases);
        case "bytes":
            return request.cases.map(poseidonBytes);
        case "smt": {
            const results = [];
            for (const c of request.cases) results.push(await smtCase(c));
            return results;
        }
        default:
            throw new Error(`unknown request kind: ${request.kind}`);
    }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
    if (line.trim() === "") continue;
    let id = null;
    let answer;
    try {
        const request = JSON.parse(line);
        id = request.id ?? null;
        answer = { id, results: await serve(request) };
    } catch (e) {
        answer = { id, error: String(e?.stack ?? e) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
}
// ffjavascript keeps handles open; stdin closing means the caller is done (exit once stdout has drained).
process.stdout.write("", () => process.exit(0));
