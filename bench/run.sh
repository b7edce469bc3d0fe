#!/usr/bin/env bash
# The performance benchmark: bash bench/run.sh [--scales "USERS:ORDERS ..."] [--runs N]
#                                              [--loop-users N] [--regenerate] [--no-write] [--no-clv]
#                                              [--no-churn]
# Builds and installs a release build, starts a throwaway PostgreSQL 15 with the settings below
# (its own directory and port, separate from the test cluster), generates a seed-shaped shop at
# each scale (bench/generate.sql; kept between runs unless --regenerate), and times, on the same
# data in the same run, best of N runs each: the LTV refresh, the floor (one plain read of the
# orders), the best hand-written SQL, the original one-query-per-user loop, the summary, the
# distribution and per-user calls, then RFM, segmentation and the weekly anomaly refresh. It checks
# that the extension's results equal the hand-written SQL's, and writes the results into
# BENCHMARKS.md between the generated-results markers.
# Not part of the test command: the default scales take about half an hour.
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SCALES="100000:1000000 1000000:10000000"
RUNS=3
LOOP_USERS=20000
REGENERATE=0
WRITE=1
CLV=1
CHURN=1
AS_OF=2025-06-30
while [ $# -gt 0 ]; do
    case $1 in
        --scales) SCALES=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --loop-users) LOOP_USERS=$2; shift 2 ;;
        --regenerate) REGENERATE=1; shift ;;
        --no-write) WRITE=0; shift ;;
        --no-clv) CLV=0; shift ;;
        --no-churn) CHURN=0; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

OUT=$CDA_DIR/results
mkdir -p "$OUT"
chmod 777 "$OUT" 2>/dev/null || true

# This script's q shows notices and keeps psql's field separator (settings.sh's hides them).
q() { psql_ -d "$1" -At -c "$2"; }

setup_toolchain
install_extension --release
start_cluster

results=()
for scale in $SCALES; do
    users=${scale%%:*} orders=${scale##*:}
    db=cda_bench_${users}_${orders}
    if [ "$REGENERATE" = 1 ] || [ "$(q postgres "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ] \
        || [ "$(q "$db" "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'" 2>/dev/null)" != 1 ]; then
        say "generating $users users and $orders orders in $db"
        recreate_db "$db"
        gen_ms=$(psql_ -d "$db" -v users="$users" -v orders="$orders" -c '\timing on' -f "$ROOT/bench/generate.sql" \
            | awk '/^Time: / {t += $2} END {print t}')
        echo "generated in $(awk -v t="$gen_ms" 'BEGIN {printf "%.0f", t / 1000}') s"
    fi
    say "measuring at $users users / $orders orders"
    psql_ -d "$db" -c "DROP EXTENSION IF EXISTS cda_analytics CASCADE" -c "CREATE EXTENSION cda_analytics" >/dev/null 2>&1
    psql_ -d "$db" -f "$ROOT/bench/baselines.sql" >/dev/null
    stats=$(q "$db" "SELECT count(*) FILTER (WHERE status IN ('paid','shipped','completed')) || ' ' || pg_size_pretty(pg_table_size('orders')) FROM orders")

    # Warm the caches once, then interleave the contenders round by round. The refresh is timed
    # twice over: into empty results (every row written, as the first refresh), and a day after
    # the previous refresh, the daily case, where it rewrites only the rows that changed: each
    # round fills empty results as of AS_OF, then refreshes as of the day before, which changes
    # the users who ordered on AS_OF and those whose horizon ended on it.
    ms "$db" "SELECT count(*), sum(total_amount) FROM orders" >/dev/null
    prev=$(q "$db" "SELECT DATE '$AS_OF' - 1")
    floor="" first="" ext="" hand=""
    for ((r = 0; r < RUNS; r++)); do
        t=$(ms "$db" "SELECT count(*), sum(total_amount) FROM orders"); floor=$(min "$floor" "$t")
        q "$db" "TRUNCATE ml_user_ltv_rows" >/dev/null
        t=$(ms "$db" "SELECT calculate_all_ltv('$AS_OF')"); first=$(min "$first" "$t")
        t=$(ms "$db" "SELECT calculate_all_ltv('$prev')"); ext=$(min "$ext" "$t")
        written=$(q "$db" "SELECT rows_written FROM ltv_last_run")
        t=$(ms "$db" "SELECT bench.hand_refresh('$AS_OF')"); hand=$(min "$hand" "$t")
        echo "round $((r + 1)): floor $floor ms, calculate_all_ltv into empty results $first ms, a day later $ext ms ($written rows rewritten), hand-written SQL $hand ms (best so far)"
    done
    q "$db" "SELECT calculate_all_ltv('$AS_OF')" >/dev/null

    # Same results, or the timings mean nothing.
    diff=$(q "$db" "SELECT missing || ' ' || unexpected FROM bench.diff_count('public.ml_user_ltv', 'bench.hand_ltv')")
    rows=$(q "$db" "SELECT count(*) FROM ml_user_ltv")
    if [ "$diff" != "0 0" ]; then
        echo "calculate_all_ltv and the hand-written SQL disagree (missing unexpected: $diff)" >&2
        exit 1
    fi
    echo "results identical: $rows rows, 0 differences"

    # The original shape, on the first LOOP_USERS users, scaled to all users.
    n_loop=$(( LOOP_USERS < users ? LOOP_USERS : users ))
    loop=$(ms "$db" "SELECT bench.loop_refresh('$AS_OF', $n_loop)")
    diff=$(q "$db" "SELECT missing || ' ' || unexpected FROM bench.diff_count('bench.loop_ltv', 'public.ml_user_ltv', 'bench.loop_ltv')")
    if [ "$diff" != "0 0" ]; then
        echo "the per-user loop disagrees with calculate_all_ltv (missing unexpected: $diff)" >&2
        exit 1
    fi
    loop_all=$(awk -v t="$loop" -v n="$n_loop" -v u="$users" 'BEGIN {printf "%.1f", t * u / n}')

    # Peak private memory of the backend (and of its largest parallel worker) during a refresh
    # that writes every row.
    stop=$OUT/mem.stop memf=$OUT/mem.out
    rm -f "$stop" "$memf"
    psql_ -d "$db" -At >/dev/null <<SQL
SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_PID :pid
\! bash "$ROOT/bench/memsample.sh" "\$BENCH_PID" "$memf" "$stop" &
TRUNCATE ml_user_ltv_rows;
SELECT pg_sleep(0.2);
SELECT calculate_all_ltv('$AS_OF');
\! touch "$stop"
SQL
    for _ in $(seq 50); do [ -s "$memf" ] && break; sleep 0.1; done
    read -r mem_leader mem_worker <"$memf"
    base_mem=$(psql_ -d "$db" -At <<SQL
SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_PID :pid
\! awk '/^RssAnon:/ {print \$2}' /proc/\$BENCH_PID/status
SQL
)

    # RFM: the refresh against one read of the orders plus a sort of the users, and against the
    # hand-written statement, whose scores it must equal.
    # Timed as the LTV refresh is: into empty results, and as of the day before the previous run.
    rfm="" rfm_first="" sort=""
    for ((r = 0; r < RUNS; r++)); do
        q "$db" "TRUNCATE ml_user_rfm_rows" >/dev/null
        t=$(ms "$db" "SELECT calculate_all_rfm('$AS_OF')"); rfm_first=$(min "$rfm_first" "$t")
        t=$(ms "$db" "SELECT calculate_all_rfm('$prev')"); rfm=$(min "$rfm" "$t")
        rfm_written=$(q "$db" "SELECT rows_written FROM ml_rfm_runs ORDER BY run_id DESC LIMIT 1")
        t=$(ms "$db" "SELECT count(*) FROM (SELECT user_id FROM users ORDER BY registered_at, user_id OFFSET 0) s"); sort=$(min "$sort" "$t")
    done
    q "$db" "SELECT calculate_all_rfm('$AS_OF')" >/dev/null
    hand_rfm=$(ms "$db" "SELECT bench.hand_rfm_refresh('$AS_OF')")
    diff=$(q "$db" "SELECT (SELECT count(*) FROM (SELECT * FROM bench.hand_rfm EXCEPT SELECT user_id, r_score, f_score, m_score FROM public.ml_user_rfm WHERE r_score IS NOT NULL) d) || ' ' || (SELECT count(*) FROM (SELECT user_id, r_score, f_score, m_score FROM public.ml_user_rfm WHERE r_score IS NOT NULL EXCEPT SELECT * FROM bench.hand_rfm) d)")
    if [ "$diff" != "0 0" ]; then
        echo "calculate_all_rfm and the hand-written RFM SQL disagree (missing unexpected: $diff)" >&2
        exit 1
    fi
    echo "rfm: calculate_all_rfm into empty results $rfm_first ms, a day later $rfm ms ($rfm_written rows rewritten), sort of users $sort ms, hand-written $hand_rfm ms; scores identical"
    # K-means: one fit with k given, one with k chosen by silhouette, one assignment refresh.
    fit=$(ms "$db" "SELECT count(*) FROM kmeans_fit('bench', '$AS_OF', 5)")
    fit_auto=$(ms "$db" "SELECT count(*) FROM kmeans_fit('bench_auto', '$AS_OF')")
    assign=$(ms "$db" "SELECT calculate_all_clusters('bench', '$AS_OF')")
    features=$(ms "$db" "SELECT count(*) FROM user_features('$AS_OF')")
    echo "k-means: features $features ms, fit k=5 $fit ms, fit with k by silhouette $fit_auto ms, assign all $assign ms"
    # Weekly anomalies: the last complete week, and the last four.
    anomalies=$(ms "$db" "SELECT * FROM calculate_all_anomalies('$AS_OF')")
    anomalies4=$(ms "$db" "SELECT * FROM calculate_all_anomalies('$AS_OF', weeks => 4)")
    judged=$(q "$db" "SELECT count(*) || ' ' || count(*) FILTER (WHERE is_anomaly) FROM ml_user_anomalies_weekly")
    echo "anomalies: last week $anomalies ms, last 4 weeks $anomalies4 ms (rows, anomalies: $judged)"

    summary=$(q "$db" "SELECT p50_ms || ' ' || max_ms FROM bench.latency('SELECT * FROM get_ltv_summary()', 100)")
    dist=$(q "$db" "SELECT p50_ms || ' ' || max_ms FROM bench.latency('SELECT * FROM ltv_distribution()', 100)")
    user=$(q "$db" "SELECT p50_ms || ' ' || p99_ms FROM bench.latency('SELECT * FROM calculate_user_ltv(\$1, ''$AS_OF'')', 2000)")

    results+=("$users|$orders|$stats|$floor|$ext|$hand|$n_loop|$loop|$loop_all|$mem_leader|$mem_worker|$base_mem|$summary|$dist|$user|$rows|$rfm|$sort|$hand_rfm|$features|$fit|$fit_auto|$assign|$anomalies|$anomalies4|$first|$written|$rfm_first|$rfm_written")
    echo "${results[-1]}"
done

printf '%s\n' "${results[@]}" >"$OUT/results.txt"
machine="$(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr)"
pgver=$("$PG_BIN/postgres" --version)
table=$(awk -F'|' -v machine="$machine" -v pgver="$pgver" -v settings="$(echo "$BENCH_SETTINGS" | paste -sd, - | sed 's/,/, /g')" -v runs="$RUNS" -v date="$(date -u +%Y-%m-%d)" '
function f(x) { return sprintf("%.0f ms", x) }
function r(x) { return sprintf("%.2f", x) }
BEGIN {
    print "Measured " date " on " machine "; " pgver "."
    print "Settings: " settings "; everything else default (fsync, synchronous_commit and full_page_writes on)."
    print "Times are the best of " runs " runs each, interleaved, from a fresh session (psql timing); latencies are measured inside the backend."
    print ""
}
{ n++; for (i = 1; i <= NF; i++) v[n, i] = $i }
END {
    hdr = "| measurement |"; sep = "|---|"
    for (k = 1; k <= n; k++) {
        split(v[k, 3], st, " ")
        hdr = hdr sprintf(" %d users / %d orders |", v[k, 1], v[k, 2]); sep = sep "---|"
    }
    print hdr; print sep
    row("successful orders read", 0)
    row("floor: `SELECT count(*), sum(total_amount) FROM orders`", 4)
    row("`calculate_all_ltv()` a day after the previous refresh (rows rewritten)", 5)
    row("`calculate_all_ltv()` into empty results (every row written)", 26)
    row("best hand-written SQL (DELETE + INSERT ... SELECT)", 6)
    row("original shape: one query per user (scaled)", 9)
    row("calculate_all_ltv / floor: a day later / into empty results", -1)
    row("calculate_all_ltv / hand-written SQL: a day later / into empty results", -2)
    row("loop / calculate_all_ltv: a day later / into empty results", -3)
    row("peak backend memory during refresh (RssAnon, leader / largest worker)", -4)
    row("`get_ltv_summary()` p50 / max of 100", -5)
    row("`ltv_distribution()` p50 / max of 100", -6)
    row("`calculate_user_ltv(id)` p50 / p99 of 2000", -7)
    row("`calculate_all_rfm()` a day after the previous refresh (rows rewritten)", 17)
    row("`calculate_all_rfm()` into empty results (every row written)", 28)
    row("sort of the users (`ORDER BY` over users)", 18)
    row("calculate_all_rfm / (floor + sort of users): a day later / into empty results", -8)
    row("hand-written RFM SQL (window functions, once)", 19)
    row("`user_features()` snapshot (all users)", 20)
    row("`kmeans_fit(k => 5)` (features, fit, store)", 21)
    row("`kmeans_fit()` with k chosen by silhouette over 2..10", 22)
    row("`calculate_all_clusters()` (features, assign to stored model, write)", 23)
    row("`calculate_all_anomalies()`: the last complete week, results written", 24)
    row("`calculate_all_anomalies(weeks => 4)`: the last four weeks", 25)
}
function row(label, col,   k, line, s, a, b) {
    line = "| " label " |"
    for (k = 1; k <= n; k++) {
        if (col > 0) s = f(v[k, col]) (col == 9 ? sprintf(" (%d users measured: %s)", v[k, 7], f(v[k, 8])) : "") (col == 5 ? sprintf(" (%d rows)", v[k, 27]) : "") (col == 17 ? sprintf(" (%d rows)", v[k, 29]) : "")
        else if (col == 0) { split(v[k, 3], a, " "); s = a[1] " (" a[2] " " a[3] " table)" }
        else if (col == -1) s = r(v[k, 5] / v[k, 4]) "x / " r(v[k, 26] / v[k, 4]) "x"
        else if (col == -2) s = r(v[k, 5] / v[k, 6]) "x / " r(v[k, 26] / v[k, 6]) "x"
        else if (col == -3) s = sprintf("%.0fx / %.0fx faster", v[k, 9] / v[k, 5], v[k, 9] / v[k, 26])
        else if (col == -8) s = r(v[k, 17] / (v[k, 4] + v[k, 18])) "x / " r(v[k, 28] / (v[k, 4] + v[k, 18])) "x"
        else if (col == -4) s = sprintf("%.0f MB / %.0f MB (idle backend %.0f MB)", v[k, 10] / 1024, v[k, 11] / 1024, v[k, 12] / 1024)
        else { split(v[k, 8 - col], a, " "); s = sprintf("%.2f ms / %.2f ms", a[1], a[2]) }
        line = line " " s " |"
    }
    print line
}' "$OUT/results.txt")
echo
echo "$table"
if [ "$WRITE" = 1 ]; then
    write_section bench "$table"
fi
if [ "$CLV" = 1 ]; then
    clv_args=(--runs "$RUNS")
    [ "$WRITE" = 1 ] || clv_args+=(--no-write)
    bash "$ROOT/bench/clv.sh" "${clv_args[@]}"
fi
if [ "$CHURN" = 1 ]; then
    churn_args=()
    [ "$WRITE" = 1 ] || churn_args+=(--no-write)
    bash "$ROOT/bench/churn.sh" "${churn_args[@]}"
fi
