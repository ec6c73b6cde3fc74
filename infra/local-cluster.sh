#!/usr/bin/env bash
# Starts (or stops) a local Rustorium Grid cluster on loopback: one PostgreSQL server and N silos that keep
# their shards, membership and directory in it. For trying the cluster out and for demos; tests start their own.
#
#   infra/local-cluster.sh start [--silos N] [--dir DIR] [--pg-port P] [--base-port B]
#   infra/local-cluster.sh status [--dir DIR]
#   infra/local-cluster.sh stop [--dir DIR]
#
# Extra silo options (e.g. "--schema other --shards 1") can be given in RGRID_SILO_ARGS.
# Defaults: 3 silos, DIR=./data/cluster, PostgreSQL on 127.0.0.1:55432 (database "grid"), silo i (1-based) on
# grid port B+i and HTTP port B+80+i with B=7400 (silo 1: 7401 and 7481). Logs: DIR/silo-i.log, DIR/pg/server.log.
# PostgreSQL refuses to run as root: as root, the server runs as the "postgres" user over a directory it owns.
set -euo pipefail
cd "$(dirname "$0")/.."

command=${1:-}
[ -n "$command" ] && shift || true
silos=3 dir=./data/cluster pg_port=55432 base=7400
while [ $# -gt 0 ]; do
  case "$1" in
    --silos) silos=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --pg-port) pg_port=$2; shift 2 ;;
    --base-port) base=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$silos" in ''|*[!0-9]*) echo "--silos must be a number" >&2; exit 2 ;; esac
[ "$silos" -ge 1 ] && [ "$silos" -le 20 ] || { echo "--silos must be 1..20" >&2; exit 2; }

pg_bin=${RGRID_PG_BIN:-/usr/lib/postgresql/15/bin}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pgdata=$dir/pg/data
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
conn="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=grid"
silo_dll=silo/Rustorium.Grid.Silo/bin/Release/net10.0/rustorium-silo.dll

start_pg() {
  [ -x "$pg_bin/pg_ctl" ] || { echo "PostgreSQL not found in $pg_bin (set RGRID_PG_BIN)" >&2; exit 3; }
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    echo "== initdb $pgdata"
    mkdir -p "$dir/pg"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/pg"
    as_pg "$pg_bin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  if as_pg "$pg_bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    echo "== PostgreSQL already running on 127.0.0.1:$pg_port"
  else
    echo "== starting PostgreSQL on 127.0.0.1:$pg_port"
    as_pg "$pg_bin/pg_ctl" -D "$pgdata" -l "$dir/pg/server.log" -w -t 60 \
      -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/pg -c max_connections=300" start >/dev/null
  fi
  if ! as_pg "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='grid'" postgres | grep -q 1; then
    as_pg "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE grid" postgres
  fi
}

start_silos() {
  if [ ! -f "$silo_dll" ]; then
    echo "== building the silo (Release)"
    dotnet build silo/Rustorium.Grid.Silo -c Release -v quiet -nologo >/dev/null
  fi
  for i in $(seq 1 "$silos"); do
    pidfile=$dir/silo-$i.pid
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "   silo-$i already running (pid $(cat "$pidfile"))"; continue; fi
    port=$((base + i)) http=$((base + 80 + i))
    # shellcheck disable=SC2086 # RGRID_SILO_ARGS is a list of options
    nohup dotnet "$silo_dll" --store postgres --postgres "$conn" --name "silo-$i" --region local \
      --port "$port" --http-port "$http" ${RGRID_SILO_ARGS:-} >"$dir/silo-$i.log" 2>&1 &
    echo $! >"$pidfile"
    echo "   silo-$i: grid 127.0.0.1:$port, status http://127.0.0.1:$http/status (pid $!, log $dir/silo-$i.log)"
  done
  echo "== waiting for the silos to serve"
  for i in $(seq 1 "$silos"); do
    http=$((base + 80 + i))
    for _ in $(seq 1 120); do
      if curl -fsS "http://127.0.0.1:$http/health" >/dev/null 2>&1; then break; fi
      if ! kill -0 "$(cat "$dir/silo-$i.pid")" 2>/dev/null; then echo "silo-$i exited; its log:" >&2; tail -20 "$dir/silo-$i.log" >&2; exit 1; fi
      sleep 0.5
    done
  done
  echo "== cluster up. Try: dotnet run --project client/Rustorium.Grid.Cli -- status --endpoint 127.0.0.1:$((base + 1))"
}

stop_all() {
  for pidfile in "$dir"/silo-*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      echo "== stopping $(basename "$pidfile" .pid) (pid $pid): SIGTERM, it hands its shards over"
      kill -TERM "$pid"
      for _ in $(seq 1 240); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f "$pidfile"
  done
  if [ -f "$pgdata/PG_VERSION" ] && as_pg "$pg_bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    echo "== stopping PostgreSQL"
    as_pg "$pg_bin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null
  fi
}

case "$command" in
  start) start_pg; start_silos ;;
  stop) stop_all ;;
  status)
    for pidfile in "$dir"/silo-*.pid; do
      [ -f "$pidfile" ] || continue
      pid=$(cat "$pidfile"); name=$(basename "$pidfile" .pid)
      if kill -0 "$pid" 2>/dev/null; then echo "$name: running (pid $pid)"; else echo "$name: not running"; fi
    done
    if as_pg "$pg_bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then echo "postgres: running on 127.0.0.1:$pg_port"; else echo "postgres: not running"; fi ;;
  *) echo "usage: $0 start|status|stop [--silos N] [--dir DIR] [--pg-port P] [--base-port B]" >&2; exit 2 ;;
esac
