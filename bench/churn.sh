#!/usr/bin/env bash
# The churn and purchase benchmark: bash bench/churn.sh [--scales "cdnow USERS:ORDERS ..."] [--no-write]
# On the benchmark cluster (bench/settings.sh), times churn_train (reading the orders, BG/NBD
# refitted at every snapshot, features and labels, both classifiers and their evaluation, each
# phase as churn_train records it), calculate_all_churn (every customer scored and written),
# the same for a purchase model, and churn_user for single customers; and reports every scorer's
# validation metrics. Scales: `cdnow` is the full CDNOW data (23,570 real customers) as of the end
# of the data; USERS:ORDERS is the generated shop of bench/run.sh (kept between runs; generated
# here when missing), as of 2025-06-30, where everyone buys to the end and BG/NBD cannot be fitted;
# `clv:N` is the customer base of N customers drawn from BG/NBD by bench/clv.sh (skipped when that
# has not run), where customers do drop out. One run each: a training run takes tens of seconds.
# Writes the table into BENCHMARKS.md between the churn markers. bench/run.sh runs it at the end
# unless given --no-churn.
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

scales_options "cdnow 1000000:10000000 clv:1000000" "$@"

sec() { awk -v t="$1" 'BEGIN {printf "%.1f", t / 1000}'; }

setup_toolchain
install_extension --release
start_cluster

sections=()
for scale in $SCALES; do
    if [ "$scale" = cdnow ]; then
        db=cda_bench_churn_cdnow as_of=1998-06-30 label="CDNOW (23,570 real customers, 1997-98), as of 1998-06-30"
        if [ "$(q postgres "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ]; then
            recreate_db "$db"
            psql_ -q -d "$db" -v cdnow_file="$ROOT/demo/cdnow/CDNOW_master.txt" -f "$ROOT/demo/load_cdnow.sql" >/dev/null
        fi
    elif [ "${scale%%:*}" = clv ]; then
        db=cda_bench_clv_${scale##*:} as_of=2025-06-30
        label="customer base drawn from BG/NBD, ${scale##*:} customers (bench/generate_clv.py), as of $as_of"
        if [ "$(q postgres "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ]; then
            echo "skipping $scale: run bench/clv.sh first, which draws that customer base" >&2
            continue
        fi
    else
        users=${scale%%:*} orders=${scale##*:}
        db=cda_bench_${users}_${orders} as_of=2025-06-30
        label="generated shop, $users users / $orders orders (bench/generate.sql), as of $as_of"
        if [ "$(q postgres "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ]; then
            say "generating $users users and $orders orders in $db"
            recreate_db "$db"
            psql_ -q -d "$db" -v users="$users" -v orders="$orders" -f "$ROOT/bench/generate.sql" >/dev/null
        fi
    fi
    say "churn and purchase at $scale"
    psql_ -d "$db" -c "DROP EXTENSION IF EXISTS cda_analytics CASCADE" -c "CREATE EXTENSION cda_analytics" >/dev/null 2>&1
    train=$(ms "$db" "SELECT count(*) FROM churn_train('bench_churn', as_of => '$as_of')")
    model=$(q "$db" "SELECT round(phase_ms[1]) || ' ' || round(phase_ms[2]) || ' ' || round(phase_ms[3]) || ' ' || round(phase_ms[4]) || ' ' || eligible_training_rows || ' ' || round(sample_rate::numeric, 4) || ' ' || coalesce(btyd_model, 'none') || ' ' || classifier FROM ml_churn_models WHERE model_name = 'bench_churn'")
    metrics=$(q "$db" "SELECT string_agg(scorer || ': ROC AUC ' || round(roc_auc::numeric, 3) || ', PR AUC ' || round(pr_auc::numeric, 3) || ', F1 ' || round(f1::numeric, 3) || ', top-decile lift ' || round(top_decile_lift::numeric, 2) || CASE WHEN chosen THEN ' (kept)' ELSE '' END, '; ' ORDER BY scorer) || '|' || max(rows) || '|' || max(positives) FROM ml_churn_model_metrics WHERE model_name = 'bench_churn' AND split = 'validation'")
    score=$(ms "$db" "SELECT * FROM calculate_all_churn('bench_churn', '$as_of')")
    scored=$(q "$db" "SELECT count(*) FROM ml_churn_scores")
    ptrain=$(ms "$db" "SELECT count(*) FROM churn_train('bench_purchase', 'purchase', as_of => '$as_of')")
    pmetrics=$(q "$db" "SELECT string_agg(scorer || ': ROC AUC ' || round(roc_auc::numeric, 3) || ', PR AUC ' || round(pr_auc::numeric, 3) || CASE WHEN chosen THEN ' (kept)' ELSE '' END, '; ' ORDER BY scorer) FROM ml_churn_model_metrics WHERE model_name = 'bench_purchase' AND split = 'validation'")
    pscore=$(ms "$db" "SELECT * FROM calculate_all_purchase('bench_purchase', '$as_of')")
    ids=$(q "$db" "SELECT user_id FROM ml_churn_scores ORDER BY hashint8(user_id) LIMIT 5")
    one=""
    for id in $ids; do one="$one $(ms "$db" "SELECT * FROM churn_user($id, 'bench_churn', '$as_of')")"; done
    one=$(echo "$one" | tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    read -r p_read p_fit p_build p_train eligible rate btyd kept <<<"$model"
    IFS='|' read -r scorers vrows vpos <<<"$metrics"
    echo "$scale: train $train ms ($model), score $score ms ($scored customers), purchase train $ptrain ms, score $pscore ms, churn_user p50 $one ms"
    sections+=("### $label

| measurement | time |
|---|---|
| \`churn_train()\` (26 weekly snapshots, the last 4 validating; results stored) | $(sec "$train") s |
| &nbsp;&nbsp;reading the orders into histories | $(sec "$p_read") s |
| &nbsp;&nbsp;purchase model refitted at each snapshot (used: $btyd) | $(sec "$p_fit") s |
| &nbsp;&nbsp;features and labels ($eligible eligible training rows, sampled at $rate) | $(sec "$p_build") s |
| &nbsp;&nbsp;logistic regression, tree, thresholds and metrics | $(sec "$p_train") s |
| \`calculate_all_churn()\` ($scored customers scored and written) | $(sec "$score") s |
| \`churn_train('purchase')\` | $(sec "$ptrain") s |
| \`calculate_all_purchase()\` | $(sec "$pscore") s |
| \`churn_user(id)\`, median of 5 customers | $one ms |

Churn in 60 days, validation ($vrows rows, $vpos churned): $scorers.
Purchase in 30 days, validation: $pmetrics.
")
done

machine="$(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM; $("$PG_BIN/postgres" --version)"
body="Measured $(date -u +%Y-%m-%d) on $machine, settings as above, one run each.

$(printf '%s\n' "${sections[@]}")"
echo "$body"
if [ "$WRITE" = 1 ]; then
    write_section churn "$body"
fi
