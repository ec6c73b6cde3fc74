#!/usr/bin/env bash
# Side by side on this machine: circomlibjs 0.1.7 (the reference) and our `grid bench`, one core each.
#
#   tests/crosscheck/compare-speed.sh [--seconds S] [--leaves N] [--inserts M]
#
# Poseidon(2) hashes/s for S seconds (default 3) each, and sparse Merkle tree single inserts/s with the
# tree at about N keys (default 10,000): the last M (default 1,000) of N inserts for circomlibjs, M inserts
# into a tree filled with N−M keys for ours (`grid bench smt --leaves N−M --inserts M`). Both sides run
# pinned to one core (taskset, when present) so neither gets the second core for its GC or JIT. Numbers
# from a busy machine are noise: run it on a quiet one.
#
# Needs node 20+ and npm (installs tests/crosscheck's pinned dependencies with `npm ci` if missing) and the
# .NET SDK. If our CLI cannot run `grid bench`, prints the reference figures and says why ours are missing
# (exit 0, since the reference figures are still the product); any other failure exits non-zero.
set -euo pipefail

seconds=3
leaves=10000
inserts=1000
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --leaves) leaves="$2"; shift 2 ;;
        --inserts) inserts="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare-speed.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
if ! [[ "$leaves" =~ ^[0-9]+$ && "$inserts" =~ ^[0-9]+$ ]] || (( inserts < 1 || inserts > leaves )); then
    echo "compare-speed.sh: --leaves and --inserts must be whole numbers with 1 <= inserts <= leaves" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cli="$root/client/Rustorium.Grid.Cli"

for tool in node npm; do
    command -v "$tool" >/dev/null || { echo "compare-speed.sh: '$tool' not found: install Node.js 20+ and npm" >&2; exit 1; }
done

pin=()
if command -v taskset >/dev/null; then
    pin=(taskset -c "${CORE:-0}")
    where="pinned to core ${CORE:-0}"
else
    where="not pinned (no taskset)"
fi

# Reads field $2 (a dotted path) of the JSON object in $1 with node, so no jq is needed.
json_field() {
    node -e 'let v = JSON.parse(process.argv[1]); for (const k of process.argv[2].split(".")) v = v?.[k]; if (v === undefined || v === null) process.exit(1); console.log(v);' "$1" "$2"
}

# Ours / theirs as "N.NN×".
ratio() {
    node -e 'console.log((Number(process.argv[1]) / Number(process.argv[2])).toFixed(2) + "×")' "$1" "$2"
}

if [[ ! -f "$here/node_modules/circomlibjs/package.json" ]]; then
    echo "Installing the reference (npm ci in tests/crosscheck)…" >&2
    (cd "$here" && npm ci --no-audit --no-fund >&2)
fi

echo "Measuring circomlibjs 0.1.7 ($where)…" >&2
theirs="$(cd "$here" && "${pin[@]}" node bench.mjs --json --seconds "$seconds" --leaves "$leaves" --inserts "$inserts")"
their_hashes="$(json_field "$theirs" poseidon.hashesPerSecond)"
their_inserts="$(json_field "$theirs" smt.insertsPerSecond)"

our_hashes=""
our_batched=""
our_inserts=""
missing=""
if [[ ! -f "$cli/Rustorium.Grid.Cli.csproj" ]]; then
    missing="client/Rustorium.Grid.Cli does not exist"
elif ! build_log="$(dotnet build -c Release "$cli" -nologo -v quiet 2>&1)"; then
    missing="client/Rustorium.Grid.Cli does not build:
$(printf '%s\n' "$build_log" | grep -E 'error' | head -5)"
else
    # The last stdout line is the JSON object (progress goes to stderr).
    run_grid() { "${pin[@]}" dotnet run -c Release --no-build --project "$cli" -- "$@" 2>/dev/null | tail -n 1; }
    echo "Measuring ours: grid bench poseidon / smt ($where)…" >&2
    if ! ours_poseidon="$(run_grid bench poseidon --seconds "$seconds" --json)" \
        || ! our_hashes="$(json_field "$ours_poseidon" hashesPerSecond 2>/dev/null)"; then
        missing="\`grid bench poseidon --seconds $seconds --json\` failed or printed no hashesPerSecond (got: ${ours_poseidon:-nothing})"
        our_hashes=""
    elif ! ours_batched="$(run_grid bench poseidon --batched --seconds "$seconds" --json)" \
        || ! our_batched="$(json_field "$ours_batched" hashesPerSecond 2>/dev/null)"; then
        missing="\`grid bench poseidon --batched --json\` failed (got: ${ours_batched:-nothing})"
        our_batched=""
    elif ! ours_smt="$(run_grid bench smt --leaves "$((leaves - inserts))" --inserts "$inserts" --json)" \
        || ! our_inserts="$(json_field "$ours_smt" insertsPerSecond 2>/dev/null)"; then
        missing="\`grid bench smt --leaves $((leaves - inserts)) --inserts $inserts --json\` failed or printed no insertsPerSecond (got: ${ours_smt:-nothing})"
        our_inserts=""
    fi
fi

printf '\n%-44s %16s %16s %12s\n' "one core, $(nproc) on the machine" "circomlibjs" "ours" "ours/theirs"
printf '%-44s %16s %16s %12s\n' "Poseidon(2) hashes/s" "$their_hashes" "${our_hashes:-n/a}" \
    "$([[ -n "$our_hashes" ]] && ratio "$our_hashes" "$their_hashes" || echo n/a)"
printf '%-44s %16s %16s %12s\n' "Poseidon(2) hashes/s, ours batched (HashMany)" "$their_hashes" "${our_batched:-n/a}" \
    "$([[ -n "$our_batched" ]] && ratio "$our_batched" "$their_hashes" || echo n/a)"
printf '%-44s %16s %16s %12s\n' "SMT single inserts/s at $((leaves - inserts))..$leaves keys" "$their_inserts" "${our_inserts:-n/a}" \
    "$([[ -n "$our_inserts" ]] && ratio "$our_inserts" "$their_inserts" || echo n/a)"
if [[ -n "$missing" ]]; then
    printf '\nOur figures are missing: %s\n' "$missing"
    echo "(The reference figures above stand on their own; rerun once \`grid bench\` works.)"
fi
