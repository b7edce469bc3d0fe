#!/usr/bin/env bash
# A parallel worker of a refresh killed with SIGKILL: PostgreSQL then resets every session and
# recovers (that is expected, and not the extension's doing); once it has, the results of the
# previous refresh must be there, unchanged, and a new refresh must work. Runs on the test
# cluster of scripts/lib.sh; exits non-zero on failure.
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
set -u
db=cda_crash
# Commits wait for their WAL to be written (the test cluster runs with synchronous_commit off for
# speed, which loses the last commits in any crash of the server, by design).
q() { PGOPTIONS='-c client_min_messages=warning -c synchronous_commit=on' psql_ -d "$db" -At "$@"; }

recreate_db "$db"
q >/dev/null <<'SQL'
CREATE EXTENSION cda_analytics;
CREATE TABLE users (user_id bigint PRIMARY KEY, registered_at timestamptz NOT NULL);
CREATE TABLE orders (order_id bigint, user_id bigint, created_at timestamptz, status text,
                     total_amount numeric(12,2), currency text);
INSERT INTO users SELECT i, timestamptz '2023-01-01' + (i % 365) * interval '1 day' FROM generate_series(1, 100000) i;
INSERT INTO orders
SELECT i, 1 + (i::bigint * 7919) % 100000, timestamptz '2023-01-01' + (i % 700) * interval '1 day',
       CASE WHEN i % 9 = 0 THEN 'cancelled' ELSE 'paid' END, (i % 5000) / 7.0, 'USD'
FROM generate_series(1, 2000000) i;
ANALYZE users, orders;
SQL

# The results to keep: a refresh as of one date, and a fingerprint of every row it wrote.
fingerprint="SELECT count(*) || ' ' || md5(string_agg(user_id || ':' || lifetime_revenue || ':' || orders_lifetime, ',' ORDER BY user_id))
             FROM ml_user_ltv"
q -c "SELECT calculate_all_ltv('2024-06-30')" >/dev/null
before=$(q -c "$fingerprint")
runs_before=$(q -c "SELECT count(*) FROM ml_ltv_runs")
echo "previous results: $before ($runs_before runs)"

# A refresh as of another date, through the parallel scan; its first parallel worker is killed.
killed=""
for attempt in 1 2 3 4 5; do
    PGOPTIONS='-c client_min_messages=warning -c min_parallel_table_scan_size=0 -c max_parallel_workers_per_gather=2' \
        psql_ -d "$db" -At -c "SELECT calculate_all_ltv('2024-01-31')" >/dev/null 2>&1 &
    refresh=$!
    for _ in $(seq 1 400); do
        pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'parallel worker' AND datname = '$db' LIMIT 1" 2>/dev/null || true)
        if [ -n "$pid" ]; then
            kill -9 "$pid" && killed=$pid
            break
        fi
        kill -0 "$refresh" 2>/dev/null || break
        sleep 0.01
    done
    wait "$refresh" || true
    [ -n "$killed" ] && break
    echo "attempt $attempt: the refresh ended before a worker was seen; again"
done
if [ -z "$killed" ]; then
    echo "FAILED: never saw a parallel worker to kill"
    exit 1
fi
echo "killed parallel worker $killed"

# The server recovers on its own.
for _ in $(seq 1 120); do
    q -c "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.5
done
grep -q "terminated by signal 9" "$CDA_DIR/log" && echo "the server reset after the worker's death, as PostgreSQL does"

after=$(q -c "$fingerprint")
runs_after=$(q -c "SELECT count(*) FROM ml_ltv_runs")
echo "results after recovery: $after ($runs_after runs)"
status=0
if [ "$after" != "$before" ] || [ "$runs_after" != "$runs_before" ]; then
    echo "FAILED: the previous results changed"
    status=1
fi
# And the extension works again: the interrupted refresh now completes.
users=$(q -c "SELECT calculate_all_ltv('2024-01-31')")
if [ "$users" != 100000 ]; then
    echo "FAILED: the refresh after recovery wrote $users users"
    status=1
fi
psql_ -d postgres -c "DROP DATABASE $db" >/dev/null
[ "$status" = 0 ] && echo "ok: previous results intact after the crash, refresh works again"
exit "$status"
