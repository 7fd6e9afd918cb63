#!/usr/bin/env bash
# One load scenario against a fresh Emporium, end to end:
#
#   bench/run.sh <browse|checkout|hot-sku|mixed|page|all|long-stream> [embedded|split]
#
# builds the release binaries, starts Emporium on free loopback ports (embedded: one
# process on a fresh data folder; split: command, query and projector processes on a
# fresh PostgreSQL database, with Redis and NATS when this build has those settings),
# creates the load catalogue and customers with `loadgen setup`, runs the scenario, then
# the roof that scenario is compared with (the HTTP roof for page, browse and mixed; the
# pgbench write roof for checkout and hot-sku), prints each report, the README table
# rows and each process's peak resident memory, and stops everything it started. Reports
# land in $OUT (JSON).
#
# Environment (defaults in brackets):
#   CONNECTIONS [64]  DURATION [30s]  WARMUP [5s]  RATE [closed loop]
#   PRODUCTS [1000]  SKUS_PER_PRODUCT [1]  STOCK [1000000]  CUSTOMERS [64]
#   HOT_STOCK [leave]: set the hot SKU's available units first (to watch it sell out)
#   LINES [2]: order lines per order   LAG_SAMPLE [0.1]: share of orders lag-probed
#   EMPORIUM_BENCH_PG [postgres://postgres@127.0.0.1:5432]  REDIS_URL [redis://127.0.0.1:6379]
#   NATS_URL [nats://127.0.0.1:4222]  OUT [bench/results]  NO_BUILD [0]: reuse the binaries
#   SERVER_CPUS / LOADGEN_CPUS [unpinned]: taskset CPU lists, e.g. 1 and 0
#   EMPORIUM_* settings pass through to the servers (e.g. EMPORIUM_DATABASE_MAX_CONNECTIONS).
#   LOG_STATEMENTS [0]: 1 logs every statement of the split run's database to PostgreSQL's
#   own log (for counting statements per order; it slows PostgreSQL down)
#   FILL [150s]: `long-stream` first orders the first SKU from every connection this long
#   (about 100,000 events in its stock stream at the hot-sku rate), then times orders from
#   one connection on that SKU and on one no one ordered (the last), DURATION each.
set -euo pipefail

scenario="${1:?usage: bench/run.sh <browse|checkout|hot-sku|mixed|page|all|long-stream> [embedded|split]}"
mode="${2:-embedded}"
case "$scenario" in browse|checkout|hot-sku|mixed|page|all|long-stream) ;; *)
  echo "unknown scenario $scenario" >&2; exit 2 ;; esac
case "$mode" in embedded|split) ;; *) echo "unknown mode $mode" >&2; exit 2 ;; esac

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="$target_dir/release"
out="${OUT:-$root/bench/results}"
connections="${CONNECTIONS:-64}"
duration="${DURATION:-30s}"
warmup="${WARMUP:-5s}"
pg="${EMPORIUM_BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
mkdir -p "$out"

if [ "${NO_BUILD:-0}" != 1 ]; then
  cargo build --release -p emporium -p loadgen
fi

work="$(mktemp -d -t emporium-load.XXXXXX)"
pids=()
servers=() # NAME:PID of each Emporium process, for the memory report
database=""
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$database" ]; then
    psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 ||
      echo "could not drop database $database" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

pinned() { # pinned CPU_LIST command...: run under taskset when a CPU list is given
  local cpus="$1"; shift
  if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi
}
spawn() { # spawn CPU_LIST command... &: like pinned, but the background job IS the
  # program (exec), so $! is its pid and cleanup stops it, not a wrapper shell
  local cpus="$1"; shift
  if [ -n "$cpus" ]; then exec taskset -c "$cpus" "$@"; else exec "$@"; fi
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local port
  while :; do
    port=$(( 20000 + RANDOM % 30000 ))
    port_open "$port" || { echo "$port"; return; }
  done
}
wait_ready() { # wait_ready URL LOG
  for _ in $(seq 1 240); do
    curl -fsS "$1/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  echo "Emporium at $1 did not become ready; its log:" >&2
  tail -n 40 "$2" >&2
  return 1
}
loadgen() { pinned "${LOADGEN_CPUS:-}" "$bin/loadgen" "$@"; }

admin_password="loadgen-admin-$RANDOM$RANDOM$RANDOM"
export EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD="$admin_password"
# Load runs sign up many customers from one address: lift the per-IP sign-up limit.
export EMPORIUM_RATE_LIMIT_SIGNUP_PER_MINUTE=0
export EMPORIUM_ACCESS_TOKEN_TTL_SECONDS="${EMPORIUM_ACCESS_TOKEN_TTL_SECONDS:-86400}"
export EMPORIUM_LOG="${EMPORIUM_LOG:-warn}"
export EMPORIUM_DATA_DIR="$work/data"
export LOADGEN_ADMIN_PASSWORD="$admin_password"

start() { # start NAME ROLE PORT: an Emporium process in the background
  local log="$work/$1.log"
  EMPORIUM_ADDR="127.0.0.1:$3" spawn "${SERVER_CPUS:-}" "$bin/emporium" serve --role "$2" \
    >"$log" 2>&1 &
  pids+=("$!")
  servers+=("$1:$!")
}

case "$scenario" in
  all) scenarios=(page browse mixed checkout hot-sku) ;;
  *) scenarios=("$scenario") ;;
esac
# The write roof first, before Emporium starts: nothing else on the machine, and every
# PostgreSQL connection free for pgbench's clients (with the split services' pools open,
# 64 more clients pass max_connections).
table_args=()
if [[ " ${scenarios[*]} " =~ \ (checkout|hot-sku|long-stream)\  ]]; then
  roof_line="$(DURATION="$duration" "$root/bench/write-roof.sh" "$connections")"
  echo "$roof_line"
  write_roof="$(awk '{ print $(NF-1) }' <<<"$roof_line")"
  [[ "$write_roof" =~ ^[0-9]+$ ]] && table_args+=(--write-roof "$write_roof")
fi

if [ "$mode" = embedded ]; then
  port=$(free_port)
  start emporium all "$port"
  command_url="http://127.0.0.1:$port"
  query_url="$command_url"
  wait_ready "$command_url" "$work/emporium.log"
else
  database="emporium_load_$$"
  psql -q "$pg/postgres" -c "CREATE DATABASE $database" >/dev/null
  if [ "${LOG_STATEMENTS:-0}" = 1 ]; then
    # Every statement of this database into PostgreSQL's own log, to count what a run
    # costs in statements (logging slows PostgreSQL: not for the measured numbers).
    psql -q "$pg/postgres" -c "ALTER DATABASE $database SET log_min_duration_statement = 0" >/dev/null
    echo "logging every statement of database $database to PostgreSQL's log"
  fi
  export EMPORIUM_DATABASE_URL="$pg/$database"
  # The cache and the bus join in when this build has their settings.
  settings="$("$bin/emporium" check-config)"
  if grep -q '^EMPORIUM_REDIS_URL' <<<"$settings"; then
    export EMPORIUM_REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
  fi
  if grep -q '^EMPORIUM_NATS_URL' <<<"$settings"; then
    export EMPORIUM_NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
  fi
  command_port=$(free_port)
  start command command "$command_port"
  command_url="http://127.0.0.1:$command_port"
  # The command node migrates and writes the signing key; the others start after it.
  wait_ready "$command_url" "$work/command.log"
  projector_port=$(free_port)
  start projector projector "$projector_port"
  query_port=$(free_port)
  start query query "$query_port"
  query_url="http://127.0.0.1:$query_port"
  wait_ready "http://127.0.0.1:$projector_port" "$work/projector.log"
  wait_ready "$query_url" "$work/query.log"
fi

settle() { # split: wait until the catalogue, the inventory, the Redis view cache (when
  # there is one) and the query node's search index have caught up with the setup, so
  # that the scenarios do not measure the catch-up
  local head caught search followers="'catalog', 'inventory'" count=2
  if [ -n "${EMPORIUM_REDIS_URL:-}" ]; then followers="$followers, 'view_cache'"; count=3; fi
  head="$(psql -Atq "$EMPORIUM_DATABASE_URL" -c 'SELECT COALESCE(MAX(position), 0) FROM events')"
  for _ in $(seq 1 1200); do
    caught="$(psql -Atq "$EMPORIUM_DATABASE_URL" -c "SELECT COUNT(*) FROM projection_checkpoints \
      WHERE name IN ($followers) AND position >= $head")"
    search="$(curl -fsS "$query_url/metrics" | awk '/^emporium_search_index_position/ { print int($2) }')"
    if [ "$caught" = "$count" ] && [ "${search:-0}" -ge "$head" ]; then
      echo "read models, view cache and search index at the setup's last position $head"
      return 0
    fi
    sleep 0.5
  done
  echo "the read models did not catch up with position $head in 10 minutes" >&2
  return 1
}

state="$work/state.json"
loadgen setup --target "$command_url" --query-target "$query_url" \
  --products "${PRODUCTS:-1000}" --skus-per-product "${SKUS_PER_PRODUCT:-1}" \
  --stock "${STOCK:-1000000}" --customers "${CUSTOMERS:-64}" --state "$state"
if [ "$mode" = split ]; then
  # This PostgreSQL runs with autovacuum off: give the planner statistics after the bulk
  # load, and keep giving them while the read models grow, as autovacuum's autoanalyze
  # would on an ordinary server, so the numbers are an ordinary server's. Autovacuum looks
  # at each database once a minute (autovacuum_naptime); an ANALYZE every 10 s, as here
  # before, was 2.2 of PostgreSQL's 25 CPU-seconds in a 25 s checkout run.
  psql -q "$EMPORIUM_DATABASE_URL" -c ANALYZE
  settle
  # Autovacuum would also have vacuumed the freshly loaded tables, which lets a count be
  # answered from an index alone (the visibility map).
  psql -q "$EMPORIUM_DATABASE_URL" -c "VACUUM ANALYZE"
  (while sleep 60; do psql -q "$EMPORIUM_DATABASE_URL" -c ANALYZE >/dev/null 2>&1 || true; done) &
  pids+=("$!")
fi

cpu_ticks() { # cpu_ticks PID...: user + system clock ticks of these processes and of
  # the children they have reaped (PostgreSQL's postmaster reaps ended backends)
  local pid
  for pid in "$@"; do
    awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null || echo 0
  done | awk '{ sum += $1 } END { print sum + 0 }'
}
cpu_snapshot() { # one line: NAME=TICKS for each Emporium process, PostgreSQL, Redis, NATS
  # and the whole machine
  local server line=""
  for server in "${servers[@]}"; do
    line+="${server%%:*}=$(cpu_ticks "${server#*:}") "
  done
  line+="postgres=$(cpu_ticks $(pgrep -x postgres)) "
  line+="redis=$(cpu_ticks $(pgrep -x redis-server)) nats=$(cpu_ticks $(pgrep -x nats-server)) "
  line+="machine=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat)"
  echo "$line"
}
report_cpu() { # report_cpu BEFORE AFTER JSON: CPU seconds each part used during a run
  # (warm-up included), and per request at the run's measured rate over warm-up and run
  python3 - "$1" "$2" "$3" "$(getconf CLK_TCK)" <<'PY'
import json, sys
before, after = (dict(kv.split("=") for kv in s.split()) for s in sys.argv[1:3])
hz = int(sys.argv[4])
report = json.load(open(sys.argv[3]))
requests = report["total"]["requestsPerSecond"] * (report["warmupSeconds"] + report["durationSeconds"])
used = {k: (int(after[k]) - int(before[k])) / hz for k in after}
machine = used.pop("machine")
used["the rest (loadgen)"] = max(0.0, machine - sum(used.values()))
used["machine"] = machine
print(f"CPU during the run, warm-up included (about {requests:,.0f} requests):")
for name, secs in used.items():
    per = f", {secs * 1000 / requests:.2f} ms per request" if requests else ""
    print(f"  {name} {secs:.1f} s{per}")
PY
}

run_scenario() { # run_scenario NAME: one measured run, its JSON in $out
  local extra=()
  [ -n "${RATE:-}" ] && extra+=(--rate "$RATE")
  [ -n "${HOT_STOCK:-}" ] && [ "$1" = hot-sku ] && extra+=(--hot-stock "$HOT_STOCK")
  echo
  if [ "$mode" = split ]; then
    # Statistics as of the warm-up's end, as a shop that has been taking orders has them:
    # without, the order read models are planned as the empty tables they were at the
    # set-up, and their key look-ups scan whole tables until the next minute's ANALYZE.
    (sleep "$warmup" && psql -q "$EMPORIUM_DATABASE_URL" -c ANALYZE >/dev/null 2>&1 || true) &
    pids+=("$!")
  fi
  cpu_before="$(cpu_snapshot)"
  loadgen run "$1" --target "$command_url" --query-target "$query_url" --state "$state" \
    --connections "$connections" --duration "$duration" --warmup "$warmup" \
    --lines "${LINES:-2}" --lag-sample "${LAG_SAMPLE:-0.1}" --mode "$mode" \
    --json "$out/$1-$mode.json" "${extra[@]}"
  report_cpu "$cpu_before" "$(cpu_snapshot)" "$out/$1-$mode.json"
}

reports=()
# The HTTP roof before the scenarios, while Emporium idles: after the order scenarios its
# projections and search index are still catching up for a while, and a roof measured
# then comes out low (measured: 22,899/s after the orders, 42,146/s before).
if [[ " ${scenarios[*]} " =~ \ (page|browse|mixed)\  ]]; then
  roof_port=$(free_port)
  spawn "${SERVER_CPUS:-}" "$bin/loadgen" roof-server --addr "127.0.0.1:$roof_port" \
    --from "$query_url" >"$work/roof.log" 2>&1 &
  roof_pid="$!"
  pids+=("$roof_pid")
  for _ in $(seq 1 100); do port_open "$roof_port" && break; sleep 0.1; done
  echo
  loadgen run roof --target "http://127.0.0.1:$roof_port" --connections "$connections" \
    --duration "$duration" --warmup "$warmup" --mode "$mode" --json "$out/roof-$mode.json"
  kill "$roof_pid"
  roof_report="$out/roof-$mode.json"
fi

long_stream() { # the same single-connection order on a SKU with a long stream and a fresh one
  local skus long fresh
  skus="$(python3 -c 'import json,sys; print(" ".join(s for p in json.load(open(sys.argv[1]))["products"] for s in p["skus"]))' "$state")"
  long="${skus%% *}"; fresh="${skus##* }"
  echo
  echo "filling the stream of $long for ${FILL:-150s}"
  loadgen run hot-sku --target "$command_url" --query-target "$query_url" --state "$state" \
    --connections "$connections" --duration "${FILL:-150s}" --warmup 0s --lag-sample 0 \
    --mode "$mode" --hot-sku "$long" --json "$out/long-stream-fill-$mode.json"
  for sku in "$long" "$fresh"; do
    echo
    echo "one connection ordering $sku"
    loadgen run hot-sku --target "$command_url" --query-target "$query_url" --state "$state" \
      --connections 1 --duration "$duration" --warmup "$warmup" --lag-sample 0 \
      --mode "$mode" --hot-sku "$sku" --json "$out/long-stream-$sku-$mode.json"
    reports+=("$out/long-stream-$sku-$mode.json")
  done
}

report_memory() { # peak (VmHWM: since the last reset_peaks), current, anonymous and
  # file-backed resident set of each process
  for server in "${servers[@]}"; do
    name="${server%%:*}"; pid="${server#*:}"
    awk -v name="$name" '/^VmHWM|^VmRSS|^RssAnon|^RssFile/ {
        printf "  %s %s %d MiB\n", name, $1, $2 / 1024 }' \
      "/proc/$pid/status" 2>/dev/null || echo "  $name: exited"
  done
}
declare -A overall_peaks # NAME -> KiB: the highest VmHWM each process reached over all the resets
remember_peaks() {
  local server name kib
  for server in "${servers[@]}"; do
    name="${server%%:*}"
    kib="$(awk '/^VmHWM/ { print $2 }' "/proc/${server#*:}/status" 2>/dev/null || echo 0)"
    if [ "${kib:-0}" -gt "${overall_peaks[$name]:-0}" ]; then overall_peaks[$name]="$kib"; fi
  done
}
reset_peaks() { # start each process's VmHWM afresh (proc(5), clear_refs "5"), so the next
  # report's peak is that scenario's own, not the setup's bulk load
  local server
  remember_peaks
  for server in "${servers[@]}"; do
    echo 5 >"/proc/${server#*:}/clear_refs" 2>/dev/null || true
  done
}

echo "memory after the setup (VmHWM: the setup's peak):"
report_memory
for s in "${scenarios[@]}"; do
  if [ "$s" = long-stream ]; then long_stream; continue; fi
  reset_peaks
  run_scenario "$s"
  reports+=("$out/$s-$mode.json")
  echo "memory after $s (VmHWM: the peak during $s):"
  report_memory
done
remember_peaks
if [ -n "${roof_report:-}" ]; then reports+=("$roof_report"); fi

echo
"$bin/loadgen" table "${reports[@]}" "${table_args[@]}"

echo
echo "memory (peak over the whole run, setup included, and current resident set):"
for server in "${servers[@]}"; do
  echo "  ${server%%:*} peak $(( ${overall_peaks[${server%%:*}]:-0} / 1024 )) MiB"
done
report_memory
