#!/usr/bin/env bash
# Cluster benchmark (issue 4), all in one run on one durable PostgreSQL (fsync on, synchronous_commit on):
#   1. baseline: pgbench, 64 clients, batched upserts (ROWS rows per transaction) of 16-byte keys and 100-byte values
#      into an equivalent table kv(key bytea primary key, value bytea);
#   2. the grid: 3 silos on that PostgreSQL, `grid bench load` with 64 concurrent clients, durable (Full) writes of
#      16-byte keys and 100-byte values; then cached reads (preloaded key space, no proofs) over TCP;
#   3. failover: SIGKILL the silo owning the most shards, time until every one of its shards has a new owner that
#      serves it (directory claim + a read answered), restart it; repeated KILLS times, median reported;
#   4. migration: a shard holding MOVE_KEYS keys moved between silos (`grid admin move`), time reported.
# Usage: tests/Rustorium.Grid.Benchmarks/cluster/cluster-bench.sh [--seconds S] [--kills N] [--move-keys K] [--skip-failover] [--skip-move]
# Prints a summary table at the end; raw outputs in $DIR (default /tmp/rgrid-cluster-bench).
set -euo pipefail
cd "$(dirname "$0")/../../.."
seconds=15 kills=3 move_keys=100000 rows=100 skip_failover=0 skip_move=0
dir=${DIR:-/tmp/rgrid-cluster-bench}
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --kills) kills=$2; shift 2 ;;
    --move-keys) move_keys=$2; shift 2 ;;
    --skip-failover) skip_failover=1; shift ;;
    --skip-move) skip_move=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
pg_port=55532 base=7500
pg_bin=${RGRID_PG_BIN:-/usr/lib/postgresql/15/bin}
cluster() { infra/local-cluster.sh "$@" --dir "$dir" --pg-port "$pg_port" --base-port "$base"; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psqlc() { as_pg "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
grid() { dotnet client/Rustorium.Grid.Cli/bin/Release/net10.0/grid.dll "$@"; }
now() { date +%s.%N; }

cluster stop >/dev/null 2>&1 || true
rm -rf "$dir"; mkdir -p "$dir"
dotnet build Rustorium.Grid.sln -c Release -v quiet -nologo >/dev/null

echo "== PostgreSQL (durable: fsync on, synchronous_commit on)"
# Start only PostgreSQL first (0 silos is not allowed: start 1 and stop it again would migrate; simpler: use the script's PostgreSQL part).
cluster start --silos 1 >/dev/null
kill -TERM "$(cat "$dir/silo-1.pid")"; while kill -0 "$(cat "$dir/silo-1.pid")" 2>/dev/null; do sleep 0.2; done; rm -f "$dir/silo-1.pid"
psqlc -d grid -c "SHOW fsync" -c "SHOW synchronous_commit" | paste -sd' ' | sed 's/^/   fsync, synchronous_commit: /'

echo "== 1. pgbench baseline: 64 clients, $rows-row upsert transactions, ${seconds}s"
psqlc -d grid -c "DROP TABLE IF EXISTS kv; CREATE TABLE kv (key bytea PRIMARY KEY, value bytea NOT NULL)"
cat >"$dir/upsert.sql" <<SQL
INSERT INTO kv (key, value)
SELECT decode(md5(random()::text || g::text), 'hex'), substring(decode(repeat(md5(random()::text), 7), 'hex') from 1 for 100)
  FROM generate_series(1, $rows) AS g
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
SQL
as_pg "$pg_bin/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -n -c 64 -j 2 -T "$seconds" -f "$dir/upsert.sql" grid >"$dir/pgbench.txt" 2>&1
tps=$(grep -Eo 'tps = [0-9.]+' "$dir/pgbench.txt" | head -1 | awk '{print $3}')
pg_rows=$(awk -v t="$tps" -v r="$rows" 'BEGIN{printf "%.0f", t*r}')
echo "   pgbench: $tps transactions/s = $pg_rows rows/s"
psqlc -d grid -c "DROP TABLE kv"

echo "== 2. the grid: 3 silos on the same PostgreSQL"
cluster start --silos 3 >/dev/null
ep=127.0.0.1:$((base + 1))
for _ in $(seq 1 60); do
  owned=$(psqlc -d grid -c "SELECT count(*) FROM rgrid.shards WHERE owner_endpoint IS NOT NULL" || echo 0)
  [ "$owned" = 8 ] && break; sleep 0.5
done
# With the three silos' status URLs: the run also reports their CPU time per write (and the load generator's).
statuses=()
for i in 1 2 3; do statuses+=("http://127.0.0.1:$((base + 80 + i))/status"); done
grid bench load --endpoint "$ep" --concurrency 64 --duration "$seconds" --sync Full --key-size 16 --value-size 100 --keys 1000000 --json \
  --status "${statuses[@]}" >"$dir/grid-writes.json" 2>"$dir/grid-writes.err"
grid_writes=$(python3 -c "import json;d=json.load(open('$dir/grid-writes.json'));print(round(d['opsPerSecond']))")
wp50=$(python3 -c "import json;d=json.load(open('$dir/grid-writes.json'));print(d['writes']['p50Ms'])")
wp99=$(python3 -c "import json;d=json.load(open('$dir/grid-writes.json'));print(d['writes']['p99Ms'])")
werr=$(python3 -c "import json;d=json.load(open('$dir/grid-writes.json'));print(d['errors'])")
wcpu=$(python3 -c "import json;c=json.load(open('$dir/grid-writes.json'))['cpu'];s=c['silosMicrosecondsPerOp'];print(f\"silos {s:.0f} µs\" if s is not None else 'silos ?', f\"client {c['clientMicrosecondsPerOp']:.0f} µs\", sep=', ')")
echo "   grid durable writes: $grid_writes/s (p50 $wp50 ms, p99 $wp99 ms, errors $werr; CPU a write: $wcpu)"
grid bench load --endpoint "$ep" --concurrency 64 --duration "$seconds" --read-ratio 1 --keys 10000 --preload --json \
  >"$dir/grid-reads.json" 2>"$dir/grid-reads.err"
grid_reads=$(python3 -c "import json;d=json.load(open('$dir/grid-reads.json'));print(round(d['opsPerSecond']))")
rp50=$(python3 -c "import json;d=json.load(open('$dir/grid-reads.json'));print(d['reads']['p50Ms'])")
rp99=$(python3 -c "import json;d=json.load(open('$dir/grid-reads.json'));print(d['reads']['p99Ms'])")
echo "   grid cached reads: $grid_reads/s (p50 $rp50 ms, p99 $rp99 ms)"

failovers=()
if [ "$skip_failover" = 0 ]; then
  echo "== 3. failover: SIGKILL the busiest silo, $kills times (default settings: heartbeat 1 s, dead after 5 s)"
  for k in $(seq 1 "$kills"); do
    victim=$(psqlc -d grid -c "SELECT owner_endpoint FROM rgrid.shards WHERE owner_endpoint IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    i=$(( ${victim##*:} - base ))
    shards=$(psqlc -d grid -c "SELECT string_agg(id::text, ',') FROM rgrid.shards WHERE owner_endpoint = '$victim'")
    t0=$(now); kill -KILL "$(cat "$dir/silo-$i.pid")"
    while :; do
      left=$(psqlc -d grid -c "SELECT count(*) FROM rgrid.shards s JOIN rgrid.silos m ON m.endpoint = s.owner_endpoint AND m.generation = s.owner_generation WHERE s.id IN ($shards) AND m.status = 1 AND s.owner_endpoint <> '$victim'")
      [ "$left" = "$(echo "$shards" | tr ',' '\n' | wc -l)" ] && break
      sleep 0.05
    done
    # ... and a read of a key in each re-homed shard is answered (the client re-routes).
    grid scan --endpoint "$ep" --limit 1 >/dev/null 2>&1 || true
    t1=$(now)
    f=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
    failovers+=("$f"); echo "   kill $k: silo $victim (shards $shards) re-homed and serving after $f s"
    rm -f "$dir/silo-$i.pid"; cluster start --silos 3 >/dev/null
    sleep 3   # let the restarted silo rejoin and rebalance before the next kill
  done
fi

move_ms=""
if [ "$skip_move" = 0 ]; then
  echo "== 4. migration of a shard of $move_keys keys (its own schema, one shard, 2 silos, rebalancing off)"
  cluster stop >/dev/null 2>&1 || true
  cluster start --silos 1 >/dev/null   # restarts PostgreSQL (stop stopped it)
  kill -TERM "$(cat "$dir/silo-1.pid")"; while kill -0 "$(cat "$dir/silo-1.pid")" 2>/dev/null; do sleep 0.2; done; rm -f "$dir/silo-1.pid"
  RGRID_SILO_ARGS="--schema rgrid_move --shards 1 --Silo:Cluster:Rebalance=false" cluster start --silos 2 >/dev/null
  for _ in $(seq 1 60); do
    [ "$(psqlc -d grid -c "SELECT count(*) FROM rgrid_move.shards WHERE owner_endpoint IS NOT NULL")" = 1 ] && break; sleep 0.5
  done
  t0=$(now)
  grid bench load --endpoint "$ep" --concurrency 64 --duration 0.1 --keys "$move_keys" --preload --read-ratio 1 --key-size 16 --json >/dev/null 2>&1 || true
  echo "   preloaded in $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.0f", b-a}') s"
  keys=$(psqlc -d grid -c "SELECT key_count FROM rgrid_move.shards WHERE id = 1")
  from=$(psqlc -d grid -c "SELECT owner_endpoint FROM rgrid_move.shards WHERE id = 1")
  to=$(psqlc -d grid -c "SELECT endpoint FROM rgrid_move.silos WHERE status = 1 AND endpoint <> '$from' ORDER BY endpoint LIMIT 1")
  grid admin move 1 --to "$to" --endpoint "$ep" --json >"$dir/move.json"
  move_ms=$(python3 -c "import json;d=json.load(open('$dir/move.json'));print(d['elapsedMs'])")
  # The moved shard serves at once: a read of a preloaded key through the new owner (with its proof verified).
  grid scan --endpoint "$to" --limit 1 >/dev/null
  echo "   moved shard 1 ($keys keys) $from -> $to in $move_ms ms"
fi

cluster stop >/dev/null
echo
echo "== summary (same PostgreSQL, same run)"
printf "  %-44s %s\n" "pgbench batched upsert ($rows rows/txn, 64 clients)" "$pg_rows rows/s"
printf "  %-44s %s\n" "grid durable writes (3 silos, 64 clients)" "$grid_writes writes/s  (p50 $wp50 ms, p99 $wp99 ms)"
printf "  %-44s %s\n" "CPU time a durable write" "$wcpu"
printf "  %-44s %s\n" "ratio grid / pgbench" "$(awk -v g="$grid_writes" -v p="$pg_rows" 'BEGIN{printf "%.3f", g/p}')"
printf "  %-44s %s\n" "grid cached reads over TCP" "$grid_reads reads/s (p50 $rp50 ms, p99 $rp99 ms)"
if [ ${#failovers[@]} -gt 0 ]; then
  median=$(printf "%s\n" "${failovers[@]}" | sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}')
  printf "  %-44s %s\n" "failover (kill -> re-homed), median of ${#failovers[@]}" "$median s  (${failovers[*]})"
fi
# An `if`, not `[ … ] && printf`: with --skip-move the test would be the script's last status and fail the run.
if [ -n "$move_ms" ]; then
  printf "  %-44s %s\n" "migration of a shard of $keys keys" "$move_ms ms"
fi
