#!/usr/bin/env bash
# The write roof: PostgreSQL's own rate for a one-row insert transaction, measured with
# pgbench on this machine, to compare the order rate with.
#
#   bench/write-roof.sh [CLIENTS...]        (default: 16)
#
# Environment: EMPORIUM_BENCH_PG (server URL without a database, default
# postgres://postgres@127.0.0.1:5432), DURATION (seconds per run, default 30).
# Creates a scratch database, runs `pgbench -n -M prepared -c C -j 2 -T D` with
# bench/pgbench-write-roof.sql for each client count, prints one line per count:
#   write roof: 16 clients: 9123 transactions/s
# and drops the database again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pg="${EMPORIUM_BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
duration="${DURATION:-30}"
case "$duration" in # the same spelling as loadgen's: 30, 30s, 2m
  *m) duration=$(( ${duration%m} * 60 )) ;;
  *s) duration="${duration%s}" ;;
esac
db="emporium_write_roof_$$"

psql -q "$pg/postgres" -c "CREATE DATABASE $db" >/dev/null
trap 'psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
psql -q "$pg/$db" -c "CREATE TABLE write_roof (
  id bigserial PRIMARY KEY, stream text NOT NULL, payload text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now())" >/dev/null

for clients in "${@:-16}"; do
  threads=$(( clients < 2 ? clients : 2 ))
  tps=$(pgbench -n -M prepared -c "$clients" -j "$threads" -T "$duration" \
    -f "$here/pgbench-write-roof.sql" "$pg/$db" 2>/dev/null | awk '/^tps/ { printf "%.0f", $3; exit }')
  echo "write roof: $clients clients: ${tps:-?} transactions/s"
done
