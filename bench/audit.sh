#!/usr/bin/env bash
# Audit-trail benchmarks with their peers, measured in the same run on the same machine.
#   bench/audit.sh            (needs PostgreSQL at 127.0.0.1:5432, sqlite3, pgbench)
# Prints Steward's figures (cargo bench) and the peers':
# - pgbench: the same durable single-row insert transaction, without an audit trail;
# - sqlite3: durable single-row insert transactions (WAL, synchronous=FULL), without one;
# - sqlite3 reading every audit entry's bytes (the floor under `audit verify`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/steward-target}
PG=${STEWARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/{print $2}') GiB"

out=$(mktemp)
STEWARD_BENCH_KEEP=1 STEWARD_TEST_POSTGRES_URL=$PG cargo bench -q -p steward-server --bench audit | tee "$out"
kept=$(awk '/^kept /{print $2}' "$out")

echo
echo "--- peer: pgbench, one-row insert per transaction, synchronous_commit=on"
psql "$PG" -qc "DROP TABLE IF EXISTS bench_units; CREATE TABLE bench_units (id bigserial PRIMARY KEY, name text NOT NULL, description text NOT NULL)"
script=$(mktemp)
echo "INSERT INTO bench_units (name, description) VALUES ('u' || random(), 'benchmark unit');" > "$script"
for clients in 1 8; do
  tps=$(pgbench -n -c "$clients" -j 2 -T 10 -f "$script" "$PG" 2>/dev/null | awk '/^tps/{print $3; exit}')
  echo "pgbench            postgres   clients=$clients  tps $tps"
done
psql "$PG" -qc "DROP TABLE bench_units"

echo
echo "--- peer: sqlite3 CLI, 1000 one-row transactions, WAL + synchronous=FULL"
db=$(mktemp -d)/peer.db
sqlite3 "$db" "PRAGMA journal_mode=WAL; CREATE TABLE units (name TEXT PRIMARY KEY, description TEXT NOT NULL);" >/dev/null
sql=$(mktemp)
{ echo "PRAGMA synchronous=FULL;"; for n in $(seq 1 1000); do echo "BEGIN; INSERT INTO units VALUES ('u$n', 'benchmark unit'); COMMIT;"; done; } > "$sql"
start=$(date +%s.%N); sqlite3 "$db" < "$sql"; end=$(date +%s.%N)
echo "sqlite3            sqlite     writers=1  tps $(echo "1000 / ($end - $start)" | bc -l | xargs printf '%.0f')"

echo
echo "--- peer: sqlite3 reading every entry's bytes of the 1,000,000-entry log (no hashing)"
for run in 1 2 3; do
  start=$(date +%s.%N); sqlite3 "$kept/verify.db" "SELECT sum(length(entry)) FROM audit_events" >/dev/null; end=$(date +%s.%N)
  echo "sqlite3 read       run $run  $(echo "$end - $start" | bc -l | xargs printf '%.2f') s"
done
rm -rf "$kept"
