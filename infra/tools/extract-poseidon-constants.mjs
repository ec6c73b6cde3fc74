// Regenerates src/Rustorium.Grid.Crypto/Poseidon/poseidon-constants.bin from circomlibjs's
// poseidon_constants.json (the round constants C and MDS matrices M that circomlib generated with the
// Grain LFSR script of the Poseidon authors: generate_parameters_grain.sage, field 1, S-box x^5,
// 254-bit BN254 scalar field, 8 full rounds).
//
// Usage: node infra/tools/extract-poseidon-constants.mjs <path to circomlibjs/src/poseidon_constants.json> <out.bin>
//
// Layout (all integers little-endian):
//   "RGPC" magic, u32 format version (1), u32 count of widths (16)
//   for t = 2..17: u32 t, u32 partial rounds, then t*(8+RP) round constants C[r*t+i],
//                  then t*t MDS entries M[i][j] row-major; every field element as 32 bytes little-endian.
import { readFileSync, writeFileSync } from "node:fs";

const [src, out] = process.argv.slice(2);
if (!src || !out) { console.error("usage: extract-poseidon-constants.mjs <poseidon_constants.json> <out.bin>"); process.exit(2); }
const { C, M } = JSON.parse(readFileSync(src, "utf8"));
const RP = [56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68];
const p = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
const parts = [];
const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
const fe = (s) => {
  let v = BigInt(s);
  if (v < 0n || v >= p) throw new Error("constant out of field: " + s);
  const b = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) { b[i] = Number(v & 0xffn); v >>= 8n; }
  parts.push(b);
};
parts.push(Buffer.from("RGPC", "ascii"));
u32(1); u32(16);
for (let t = 2; t <= 17; t++) {
  const c = C[t - 2], m = M[t - 2];
  if (c.length !== t * (8 + RP[t - 2])) throw new Error(`t=${t}: ${c.length} round constants`);
  if (m.length !== t || m.some((row) => row.length !== t)) throw new Error(`t=${t}: MDS is not ${t}x${t}`);
  u32(t); u32(RP[t - 2]);
  c.forEach(fe);
  m.forEach((row) => row.forEach(fe));
}
writeFileSync(out, Buffer.concat(parts));
console.log(`wrote ${out}`);
