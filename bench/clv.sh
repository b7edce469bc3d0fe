#!/usr/bin/env bash
# The CLV benchmark: bash bench/clv.sh [--scales "cdnow btyd:CUSTOMERS ..."] [--runs N]
#                                      [--lifetimes-limit SECONDS] [--runaway-scales "USERS:ORDERS ..."]
#                                      [--no-write]
# On the benchmark cluster (bench/settings.sh), fits BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma
# with clv_fit and scores every customer with calculate_all_clv, then fits and scores the same
# customer summaries (exported by clv_summary) with lifetimes 0.11.3, installed from PyPI into the
# benchmark's own virtual environment; best of N runs each, in the same run, and the parameters of
# both side by side. Scales: `cdnow` is the CDNOW sample of the literature (2,357 customers, weeks,
# calibration to 1997-09-30); `btyd:N` is a customer base of N customers drawn from BG/NBD and
# Gamma-Gamma at the CDNOW estimates (bench/generate_clv.py; kept between runs), calibrated to its
# last day. (The shop of bench/run.sh buys uniformly until the end, with no dropout at all: the
# models rightly refuse to fit it.) Writes the table into BENCHMARKS.md between the CLV markers.
# Then the fits that cannot converge: Pareto/NBD and BG/NBD on the shops of bench/run.sh, whose
# customers never drop out, each of which must end with an error within its budget.
# bench/run.sh runs it at the end unless given --no-clv.
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SCALES="cdnow btyd:1000000"
# Shops of bench/run.sh (users:orders), whose customers buy until the end and never drop out:
# the models have no maximum there, and a fit must end with an error within its budget.
RUNAWAY_SCALES="200000:2000000 1000000:10000000"
RUNS=3
LIFETIMES_LIMIT=1800
WRITE=1
while [ $# -gt 0 ]; do
    case $1 in
        --scales) SCALES=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --runaway-scales) RUNAWAY_SCALES=$2; shift 2 ;;
        --lifetimes-limit) LIFETIMES_LIMIT=$2; shift 2 ;;
        --no-write) WRITE=0; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

OUT=$CDA_DIR/results
mkdir -p "$OUT"

setup_toolchain
install_extension --release
start_cluster

VENV=$CDA_DIR/venv
if ! "$VENV/bin/python" -c 'import lifetimes' 2>/dev/null; then
    say "installing lifetimes 0.11.3 into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'lifetimes==0.11.3'
fi
lifetimes_version=$("$VENV/bin/python" -c 'import lifetimes, numpy, scipy, pandas; print(f"lifetimes {lifetimes.__version__} (numpy {numpy.__version__}, scipy {scipy.__version__}, pandas {pandas.__version__})")')

declare -A KEYS=([bgnbd]="r alpha a b" [mbgnbd]="r alpha a b" [pareto_nbd]="r alpha s beta" [gamma_gamma]="p q v")
MODELS="bgnbd mbgnbd pareto_nbd gamma_gamma"
results=()
for scale in $SCALES; do
    if [ "$scale" = cdnow ]; then
        db=cda_bench_cdnow cal=1997-09-30 label="CDNOW sample"
        say "loading the CDNOW sample into $db"
        recreate_db "$db"
        cp "$ROOT/demo/cdnow/CDNOW_sample.txt" "$OUT/CDNOW_sample.txt"
        psql_ -d "$db" -v cdnow_schema=public -v sample_file="$OUT/CDNOW_sample.txt" \
            -f "$ROOT/demo/load_cdnow_sample.sql" >/dev/null
    else
        n=${scale#btyd:}
        db=cda_bench_clv_$n cal=2025-06-30 label="simulated customer base"
        if [ "$(q postgres "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ] \
            || [ "$(q "$db" "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'" 2>/dev/null)" != 1 ]; then
            say "drawing $n customers from BG/NBD and Gamma-Gamma into $db"
            recreate_db "$db"
            "$VENV/bin/python" "$ROOT/bench/generate_clv.py" "$n" 1 "$OUT"
            psql_ -d "$db" >/dev/null <<SQL
CREATE TABLE users (user_id bigint PRIMARY KEY, registered_at timestamptz NOT NULL);
CREATE TABLE orders (order_id bigint PRIMARY KEY, user_id bigint NOT NULL, created_at timestamptz NOT NULL,
                     status text NOT NULL, total_amount numeric(12,2) NOT NULL, currency text NOT NULL DEFAULT 'USD');
\copy users FROM '$OUT/users.csv' WITH (FORMAT csv)
\copy orders (order_id, user_id, created_at, status, total_amount) FROM '$OUT/orders.csv' WITH (FORMAT csv)
ANALYZE users;
ANALYZE orders;
SQL
            rm -f "$OUT/users.csv" "$OUT/orders.csv"
        fi
        label="simulated customer base, $(q "$db" "SELECT count(*) FROM orders") orders"
    fi
    say "CLV at $label"
    psql_ -d "$db" -c "DROP EXTENSION IF EXISTS cda_analytics CASCADE" -c "CREATE EXTENSION cda_analytics" >/dev/null 2>&1
    customers=$(q "$db" "SELECT count(*) FROM clv_summary('week', '$cal')")
    distinct=$(q "$db" "SELECT count(*) FROM (SELECT DISTINCT frequency, recency, t FROM clv_summary('week', '$cal')) d")
    line="$label|$customers|$distinct"
    for model in $MODELS; do
        total="" fit=""
        for ((r = 0; r < RUNS; r++)); do
            t=$(ms "$db" "SELECT count(*) FROM clv_fit('bench_$model', '$model', 'week', '$cal')"); total=$(min "$total" "$t")
            fit=$(min "$fit" "$(q "$db" "SELECT fit_ms FROM ml_clv_models WHERE model_name = 'bench_$model'")")
        done
        params=""
        for k in ${KEYS[$model]}; do
            params="$params $(q "$db" "SELECT round((parameters->>'$k')::numeric, 6) FROM ml_clv_models WHERE model_name = 'bench_$model'")"
        done
        echo "$model: fit $fit ms (with the summary read: $total ms); parameters$params"
        line="$line|$model $fit $total$params"
    done
    score="" score_line=""
    for ((r = 0; r < RUNS; r++)); do
        read -r n read_ms score_ms write_ms <<<"$(q "$db" "SELECT customers, read_ms, score_ms, write_ms FROM calculate_all_clv('bench_bgnbd', 'bench_gamma_gamma', 12, 0.01, '$cal')")"
        if [ -z "$score" ] || awk -v a="$score_ms" -v b="$score" 'BEGIN {exit !(a < b)}'; then
            score=$score_ms score_line="$read_ms $score_ms $write_ms"
        fi
    done
    echo "calculate_all_clv on $n customers: read / score / write ms: $score_line"
    line="$line|score $score_line"

    csv=$OUT/clv_summary_$db.csv
    psql_ -d "$db" -c "\\copy (SELECT user_id, frequency, recency, t, monetary_value FROM clv_summary('week', '$cal')) TO '$csv' WITH (FORMAT csv, HEADER)" >/dev/null
    lt_runs=$RUNS
    [ "$customers" -gt 100000 ] && lt_runs=1
    say "lifetimes on the same $customers customers (best of $lt_runs, at most $LIFETIMES_LIMIT s)"
    lt_out=$OUT/lifetimes_$db.txt
    timeout "$LIFETIMES_LIMIT" "$VENV/bin/python" "$ROOT/bench/clv_lifetimes.py" "$csv" "$lt_runs" | tee "$lt_out" || true
    for model in $MODELS; do
        l=$(awk -v m="$model" '$1 == "fit" && $2 == m {$1 = ""; $2 = ""; print substr($0, 3)}' "$lt_out")
        line="$line|lt_$model ${l:-none}"
    done
    l=$(awk '$1 == "score" {print $2}' "$lt_out")
    line="$line|lt_score ${l:-none}"
    results+=("$line")
done

# Fits that cannot converge: each must end with an error (54000 when it spends its budget) within
# cda_analytics.fit_time_limit (60 s by default) plus the read, never run on for half an hour.
runaway="| shop (customers who never drop out) | model | whole clv_fit() call | outcome |
|---|---|---|---|"
for scale in $RUNAWAY_SCALES; do
    users=${scale%%:*} orders=${scale##*:}
    db=cda_bench_${users}_${orders}
    if [ "$(q postgres "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ] \
        || [ "$(q "$db" "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'" 2>/dev/null)" != 1 ]; then
        say "generating $users users and $orders orders in $db"
        recreate_db "$db"
        psql_ -d "$db" -v users="$users" -v orders="$orders" -f "$ROOT/bench/generate.sql" >/dev/null
    fi
    psql_ -d "$db" -c "DROP EXTENSION IF EXISTS cda_analytics CASCADE" -c "CREATE EXTENSION cda_analytics" >/dev/null 2>&1
    for model in pareto_nbd bgnbd; do
        say "clv_fit $model on the $users-user shop of bench/run.sh"
        start=$(date +%s.%N)
        outcome=$(PGOPTIONS='-c client_min_messages=warning' psql_ -d "$db" -At -v VERBOSITY=verbose \
            -c "SELECT 'stored: ' || string_agg(parameter || ' ' || round(estimate::numeric, 4), ', ') FROM clv_fit('runaway_$model', '$model', 'week', '2025-06-30')" 2>&1 \
            | awk '/^ERROR:/ {sub(/^ERROR: +/, ""); sub(/: +fitting [^:]*: /, " "); print; exit} /^stored/ {print; exit}' || true)
        end=$(date +%s.%N)
        secs=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f s", b - a}')
        echo "$model: $secs: $outcome"
        runaway="$runaway
| $users users, $orders orders | $model | $secs | $outcome |"
    done
done

printf '%s\n' "${results[@]}" >"$OUT/clv_results.txt"
machine="$(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
table=$(awk -F'|' -v machine="$machine" -v lt="$lifetimes_version" -v runs="$RUNS" -v limit="$LIFETIMES_LIMIT" -v date="$(date -u +%Y-%m-%d)" '
function ms(x) { return x < 1000 ? sprintf("%.1f ms", x) : sprintf("%.2f s", x / 1000) }
BEGIN {
    print "Measured " date " on " machine ", against " lt " on the same customer summaries (weeks)."
    print "Ours: best of " runs "; the fit alone (`fit_ms` in `ml_clv_models`: distinct rows, starts, polish, Hessian, checks) and, in brackets, the whole `clv_fit()` call including the read of the orders into summaries."
    print "lifetimes: best of " runs " at CDNOW size, one run at 1M, at most " limit " s in all; its default optimisers (BFGS, Nelder-Mead for Pareto/NBD)."
    print ""
    names["bgnbd"] = "BG/NBD"; names["mbgnbd"] = "MBG/NBD"; names["pareto_nbd"] = "Pareto/NBD"; names["gamma_gamma"] = "Gamma-Gamma"
}
{
    n++; label[n] = $1; cust[n] = $2; dist[n] = $3
    for (i = 4; i <= NF; i++) {
        split($i, w, " "); key = w[1]
        if (key == "score") { rd[n] = w[2]; sc[n] = w[3]; wr[n] = w[4]; continue }
        if (key == "lt_score") { ltsc[n] = w[2]; continue }
        if (substr(key, 1, 3) == "lt_") {
            m = substr(key, 4); ltfit[n, m] = w[2]
            np = 0; for (j = 3; j <= length(w); j++) ltp[n, m, ++np] = w[j]
            continue
        }
        fit[n, key] = w[2]; tot[n, key] = w[3]
        np = 0; for (j = 4; j <= length(w); j++) p[n, key, ++np] = w[j]; npar[key] = np
    }
}
END {
    hdr = "| measurement |"; sep = "|---|"
    for (k = 1; k <= n; k++) { hdr = hdr " " label[k] " (" cust[k] " customers, " dist[k] " distinct rows) |"; sep = sep "---|" }
    print hdr; print sep
    split("bgnbd mbgnbd pareto_nbd gamma_gamma", order, " ")
    for (o = 1; o <= 4; o++) {
        m = order[o]
        line1 = "| " names[m] " fit: ours |"; line2 = "| " names[m] " fit: lifetimes |"; line3 = "| " names[m] ": lifetimes / ours |"; line4 = "| " names[m] ": largest parameter difference |"
        for (k = 1; k <= n; k++) {
            line1 = line1 " " ms(fit[k, m]) " (" ms(tot[k, m]) ") |"
            if (ltfit[k, m] == "" || ltfit[k, m] == "none" || ltfit[k, m] == "skipped") { line2 = line2 " not finished within the limit |"; line3 = line3 " – |"; line4 = line4 " – |"; continue }
            line2 = line2 " " ms(ltfit[k, m] * 1000) " |"
            line3 = line3 " " sprintf("%.1fx", ltfit[k, m] * 1000 / fit[k, m]) " |"
            worst = 0
            for (j = 1; j <= npar[m]; j++) { d = p[k, m, j] - ltp[k, m, j]; if (d < 0) d = -d; d = d / (ltp[k, m, j] < 0 ? -ltp[k, m, j] : ltp[k, m, j]); if (d > worst) worst = d }
            line4 = line4 " " sprintf("%.1e relative", worst) " |"
        }
        print line1; print line2; print line3; print line4
    }
    line1 = "| scoring every customer (P(alive), 12-month purchases, spend, CLV): ours |"; line2 = "| scoring: lifetimes |"; line3 = "| scoring: lifetimes / ours |"; line4 = "| `calculate_all_clv()` read / score / write |"
    for (k = 1; k <= n; k++) {
        line1 = line1 " " ms(sc[k]) " |"
        line2 = line2 " " (ltsc[k] == "none" ? "not finished" : ms(ltsc[k] * 1000)) " |"
        line3 = line3 " " (ltsc[k] == "none" ? "–" : sprintf("%.1fx", ltsc[k] * 1000 / sc[k])) " |"
        line4 = line4 " " ms(rd[k]) " / " ms(sc[k]) " / " ms(wr[k]) " |"
    }
    print line1; print line2; print line3; print line4
}' "$OUT/clv_results.txt")
table="$table

Fits that cannot converge (the shops of bench/run.sh, whose customers buy until the end and never
drop out), with the default budget (\`cda_analytics.fit_time_limit\` = 60 s, 20,000 likelihood
evaluations); the time includes the read of the orders into summaries:

$runaway"
echo
echo "$table"
if [ "$WRITE" = 1 ]; then
    write_section clv "$table"
fi
