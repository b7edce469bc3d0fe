#!/usr/bin/env bash
# Concurrent DDL against refreshes at 2M orders, read by the extension's parallel workers (issue
# 20, defect 1): for each of ten kinds of change, twice, one session changes a source table and
# holds the change uncommitted for 2 s while another runs calculate_all_ltv (or _rfm), which waits
# for it. Each run must end with correct results (revenue equal to a plain SQL sum over the
# changed table) or a clear error that leaves the previous results, and the server must never
# restart. Usage: bash bench/ddl_stress.sh (on the test cluster of scripts/lib.sh).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
set -u +e
db=cda_ddl_stress
q() { PGOPTIONS='-c client_min_messages=warning' psql_ -d "$db" -At "$@"; }
start_cluster
recreate_db "$db"
q >/dev/null <<'SQL'
CREATE EXTENSION cda_analytics;
CREATE TABLE users_t (user_id bigint, registered_at timestamptz);
CREATE TABLE orders_t (order_id bigint, user_id bigint, created_at timestamptz, status text,
                       total_amount numeric(12,2), currency text);
INSERT INTO users_t SELECT i, timestamptz '2023-01-01' + (i % 365) * interval '1 day' FROM generate_series(1, 200000) i;
INSERT INTO orders_t
SELECT i, 1 + (i::bigint * 7919) % 200000, timestamptz '2023-01-01' + (i % 700) * interval '1 day' + (i % 86400) * interval '1 second',
       CASE WHEN i % 9 = 0 THEN 'cancelled' ELSE 'paid' END, (i % 5000) / 7.0, 'USD'
FROM generate_series(1, 2000000) i;
SQL
started=$(q -c "SELECT pg_postmaster_start_time()")
declare -a KINDS=(
  "ALTER TABLE orders ALTER COLUMN total_amount TYPE float8"
  "ALTER TABLE orders ALTER COLUMN status TYPE integer USING 1"
  "ALTER TABLE orders ALTER COLUMN created_at TYPE date"
  "ALTER TABLE orders ALTER COLUMN created_at TYPE text"
  "ALTER TABLE users ALTER COLUMN registered_at TYPE date"
  "ALTER TABLE orders ALTER COLUMN user_id TYPE integer"
  "DROP TABLE orders; CREATE TABLE orders AS SELECT * FROM orders_t WHERE order_id % 2 = 0"
  "TRUNCATE orders"
  "ALTER TABLE orders DROP COLUMN total_amount"
  "ALTER TABLE orders ADD COLUMN note text DEFAULT 'x', ALTER COLUMN total_amount TYPE numeric(14,3)"
)
expected_sql="SELECT coalesce(sum(round(o.total_amount::numeric, 2)), 0) FROM orders o JOIN users u USING (user_id)
              WHERE o.status::text IN ('paid', 'shipped', 'completed') AND o.created_at::text::date <= '2024-06-30'"
pass=0 fail=0
for kind in "${KINDS[@]}"; do
  for refresh in ltv rfm; do
    q -c "DROP TABLE IF EXISTS users, orders; CREATE TABLE users AS TABLE users_t; CREATE TABLE orders AS TABLE orders_t; ANALYZE users, orders" >/dev/null
    q -c "SELECT calculate_all_ltv('2024-06-30'), calculate_all_rfm('2024-06-30')" >/dev/null
    prev=$(q -c "SELECT (SELECT sum(lifetime_revenue) FROM ml_user_ltv) || ' ' || (SELECT sum(revenue) FROM ml_user_rfm)")
    q -c "BEGIN; $kind; SELECT pg_sleep(2); COMMIT;" >/dev/null 2>&1 &
    ddl=$!
    sleep 0.5
    out=$(PGOPTIONS='-c client_min_messages=warning -c min_parallel_table_scan_size=0 -c max_parallel_workers_per_gather=2' \
          psql_ -d "$db" -At -c "SELECT calculate_all_$refresh('2024-06-30')" 2>&1)
    wait $ddl
    now=$(q -c "SELECT pg_postmaster_start_time()" 2>/dev/null)
    if [ "$now" != "$started" ]; then
      verdict="CRASH"; started=$now
    elif [[ "$out" == ERROR* ]]; then
      after=$(q -c "SELECT (SELECT sum(lifetime_revenue) FROM ml_user_ltv) || ' ' || (SELECT sum(revenue) FROM ml_user_rfm)")
      [ "$after" = "$prev" ] && verdict="refused, previous results kept: ${out%%$'\n'*}" || verdict="WRONG: results changed after an error"
      [[ "$out" == *"XX000"* || "$out" == *"internal"* ]] && verdict="INTERNAL ERROR: $out"
    else
      want=$(q -c "$expected_sql")
      if [ "$refresh" = ltv ]; then got=$(q -c "SELECT sum(lifetime_revenue) FROM ml_user_ltv"); else got=$(q -c "SELECT coalesce(sum(revenue), 0) FROM ml_user_rfm"); fi
      same=$(q -c "SELECT '$got'::numeric = '$want'::numeric")
      [ "$same" = t ] && verdict="read as changed, revenue matches SQL ($got)" || verdict="WRONG: revenue $got, SQL says $want"
    fi
    case $verdict in CRASH*|WRONG*|INTERNAL*) fail=$((fail + 1)) ;; *) pass=$((pass + 1)) ;; esac
    echo "| ${kind:0:70} | $refresh | $verdict |"
  done
done
psql_ -d postgres -c "DROP DATABASE $db" >/dev/null
echo "$pass runs right, $fail wrong or crashed"
[ "$fail" = 0 ]
