#!/usr/bin/env bash
# The products benchmark: bash bench/products.sh [--scales "retail USERS:ORDERS ..."] [--no-write]
# On the benchmark cluster (bench/settings.sh), for each scale, in the same run:
#   * recommenders: evaluate_recommenders() (every model trained before the cutoff and ranked
#     over the whole catalogue for every tested customer), and train_recommender() for each
#     model (the order lines read, the model trained and stored with its neighbours); the
#     same training in Python, on the customers x products matrix of the same lines: the
#     `implicit` library's CosineRecommender and BM25Recommender (K = 50), and EASE in numpy;
#   * recommend(): p50 / p99 over 2,000 random customers in one session (inside the backend,
#     bench.latency), after a first call that reads the model (timed apart);
#   * calculate_all_recommendations(): every customer's top 10 written;
#   * cohort retention: cohort_retention('month') against the floor (one plain read of the
#     orders, `SELECT count(*), sum(total_amount) FROM orders`), best of 3, and the same
#     monthly cohort table in pandas.
# Scales: `retail` is UCI Online Retail (demo/online_retail) as of 2011-12-09, cutoff
# 2011-09-01; USERS:ORDERS is the generated shop of bench/run.sh (generated here when missing)
# with 100,000 products and about two lines per order (bench/generate_items.sql), as of
# 2025-06-30, cutoff 2025-04-01. EASE needs a dense matrix of its catalogue: at the generated
# scale it is trained on the 5,000 products with the most buyers (the items configured to a view
# of their lines), as the EASE paper does with its larger data sets; item-kNN on all 100,000.
# Writes the tables into BENCHMARKS.md between the products markers.
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

scales_options "retail 1000000:10000000" "$@"

# t MS: a time for the table, in ms under a second, else in s.
t() { awk -v t="$1" 'BEGIN {if (t < 1000) printf "%.0f ms", t; else printf "%.1f s", t / 1000}'; }
# phased DB SQL WHAT: runs SQL with debug1 and prints "time (phases)", the phases from WHAT's
# DEBUG line (src/toolbox/errors.rs, debug_phases).
phased() {
    PGOPTIONS='-c client_min_messages=debug1' psql_ -d "$1" -c '\timing on' -c "$2" 2>&1 \
        | awk -v w="DEBUG:  $3: " '/^Time: / {t = $2} index($0, w) == 1 {p = substr($0, length(w) + 1)} END {
              if (t == "") exit 1
              printf "%s", (t < 1000) ? sprintf("%.0f ms", t) : sprintf("%.1f s", t / 1000)
              if (p != "") printf " (%s)", p
              print ""
          }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1fx", a / b}'; }

setup_toolchain
install_extension --release
start_cluster

# The Python side: implicit, scipy and pandas in a virtual environment of the benchmark's own.
VENV=$CDA_DIR/venv
if ! "$VENV/bin/python" -c 'import implicit, pandas, scipy' 2>/dev/null; then
    say "installing implicit, scipy and pandas into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'implicit==0.7.3' scipy pandas
fi
py_versions=$("$VENV/bin/python" -c 'import implicit, numpy, scipy, pandas, sys; print(f"Python {sys.version.split()[0]}, implicit {implicit.__version__}, numpy {numpy.__version__}, scipy {scipy.__version__}, pandas {pandas.__version__}")')
OUT=$CDA_DIR/results
mkdir -p "$OUT"
chmod 777 "$OUT"

sections=()
for scale in $SCALES; do
    if [ "$scale" = retail ]; then
        db=cda_bench_retail as_of=2011-12-09 cutoff=2011-09-01 horizon='100 days'
        label="UCI Online Retail (4,372 customers, 541,909 invoice lines), as of $as_of"
        if [ "$(q postgres "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ]; then
            recreate_db "$db"
            psql_ -q -d "$db" -v retail_file="$ROOT/demo/online_retail/online_retail.csv.gz" \
                -f "$ROOT/demo/load_online_retail.sql" >/dev/null
        fi
        statuses="ARRAY['completed']" zone=Europe/London non_product=is_non_product
    else
        users=${scale%%:*} orders=${scale##*:}
        db=cda_bench_${users}_${orders} as_of=2025-06-30 cutoff=2025-04-01 horizon='91 days'
        if [ "$(q postgres "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ]; then
            say "generating $users users and $orders orders in $db"
            recreate_db "$db"
            psql_ -q -d "$db" -v users="$users" -v orders="$orders" -f "$ROOT/bench/generate.sql" >/dev/null
        fi
        if [ "$(q "$db" "SELECT count(*) FROM pg_tables WHERE tablename = 'order_items'")" = 0 ]; then
            say "generating 100000 products and their order lines in $db"
            psql_ -q -d "$db" -v products=100000 -v categories=500 -f "$ROOT/bench/generate_items.sql" >/dev/null
        fi
        label="generated shop, $users users / $orders orders / $(q "$db" "SELECT count(*) FROM order_items") order lines / 100,000 products, as of $as_of"
        statuses="ARRAY['paid','shipped','completed']" zone=UTC non_product=is_fee
    fi
    say "measuring $label"
    psql_ -q -d "$db" >/dev/null <<SQL
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cda_analytics CASCADE;
CREATE EXTENSION cda_analytics;
SELECT count(*) FROM configure_source(successful_statuses => $statuses, time_zone => '$zone');
SELECT count(*) FROM configure_items(non_product_column => '$non_product');
SQL
    psql_ -d "$db" -f "$ROOT/bench/baselines.sql" >/dev/null
    rows=()
    row() { rows+=("| $1 | $2 |"); echo "  $1: $2"; }
    report=$(q "$db" "SELECT string_agg(item || ' ' || count, ', ') FROM order_items_report('$as_of') WHERE count > 0")
    row "order lines read (order_items_report)" "$report"
    row "order_items_report(): the order lines read and checked, distinct counts" "$(t "$(ms "$db" "SELECT * FROM order_items_report('$as_of')")")"

    # The catalogue EASE trains on: all of it when it fits, else the products with most buyers.
    products=$(q "$db" "SELECT count(DISTINCT product_id) FROM order_items")
    if [ "$products" -gt 5000 ]; then
        q "$db" "DROP VIEW IF EXISTS bench.order_items_top; DROP TABLE IF EXISTS bench.top_products;
                 CREATE TABLE bench.top_products AS SELECT i.product_id FROM order_items i JOIN orders o USING (order_id)
                     GROUP BY 1 ORDER BY count(DISTINCT o.user_id) DESC, 1 LIMIT 5000;
                 CREATE VIEW bench.order_items_top AS SELECT i.* FROM order_items i WHERE i.product_id IN (SELECT product_id FROM bench.top_products);" >/dev/null
        capped() { q "$db" "SELECT count(*) FROM configure_items(order_items_table => '$1')" >/dev/null; }
        ease_note="on the 5,000 products with most buyers"
    else
        capped() { :; }
        ease_note="on the whole catalogue"
    fi

    # Evaluation: item-kNN and popularity over the whole catalogue, EASE over its catalogue.
    row "evaluate_recommenders(): popularity (2), buy-again, item-kNN cosine and BM25, both modes, k 10 and 20" \
        "$(phased "$db" "SELECT * FROM evaluate_recommenders('$cutoff', '$horizon', models => '{popularity,popularity_all,buy_again,item_knn_cosine,item_knn_bm25}')" evaluate_recommenders)"
    capped bench.order_items_top
    row "evaluate_recommenders(): EASE and the default list ($ease_note)" \
        "$(phased "$db" "SELECT * FROM evaluate_recommenders('$cutoff', '$horizon', models => '{ease,default}')" evaluate_recommenders)"
    q "$db" "SELECT model || ' ' || mode || ' NDCG@20 ' || round(ndcg::numeric, 3) || ' hit@20 ' || round(hit_rate::numeric, 3)
             FROM evaluate_recommenders('$cutoff', '$horizon', ks => '{20}', models => '{popularity,ease,default}') ORDER BY mode, model" \
        | sed 's/^/    /'
    capped public.order_items

    # Training every model on all the data to as-of, stored.
    for model in popularity buy_again item_knn_cosine item_knn_bm25 ease default; do
        [ "$model" = ease ] && capped bench.order_items_top
        row "train_recommender('$model')$( { [ "$model" = ease ] || [ "$model" = default ]; } && echo " ($ease_note)")" \
            "$(phased "$db" "SELECT * FROM train_recommender('$model', '$model', '$as_of')" "train_recommender('$model')")"
    done
    capped public.order_items

    # recommend(): the first call of a session reads the model; the next ones use it.
    first=$(ms "$db" "SELECT count(*) FROM recommend(1, 10, 'item_knn_bm25')")
    lat=$(q "$db" "SELECT count(*) FROM recommend(1, 10, 'item_knn_bm25');
                   SELECT round(p50_ms::numeric, 2) || ' ms / ' || round(p99_ms::numeric, 2) || ' ms' FROM bench.latency('SELECT count(*) FROM recommend(\$1, 10, ''item_knn_bm25'')', 2000)" | tail -1)
    row "recommend(user, 10, 'item_knn_bm25'): first call of a session (reads the model) / p50 / p99 of 2000 after" "$(t "$first") / $lat"
    lat=$(q "$db" "SELECT count(*) FROM recommend(1, 10, 'default');
                   SELECT round(p50_ms::numeric, 2) || ' ms / ' || round(p99_ms::numeric, 2) || ' ms' FROM bench.latency('SELECT count(*) FROM recommend(\$1, 10, ''default'')', 2000)" | tail -1)
    row "recommend(user, 10, 'default'): p50 / p99 of 2000" "$lat"
    row "calculate_all_recommendations('default', 10): every customer's top 10 written" \
        "$(t "$(ms "$db" "SELECT * FROM calculate_all_recommendations('default', 10, as_of => '$as_of')")")"

    # Python on the same lines: the customers x products matrix (orders per pair) as train reads it.
    pairs=$OUT/pairs_$db.csv
    q "$db" "COPY (SELECT o.user_id, i.product_id, count(DISTINCT i.order_id) AS orders
                   FROM order_items i JOIN orders o USING (order_id) JOIN products p USING (product_id)
                   WHERE o.status = ANY ($statuses) AND i.quantity > 0 AND i.unit_price > 0 AND NOT p.$non_product
                     AND o.created_at < DATE '$as_of' + 1
                   GROUP BY 1, 2) TO '$pairs' WITH (FORMAT csv, HEADER)" >/dev/null
    py=$("$VENV/bin/python" "$ROOT/bench/products_python.py" pairs "$pairs" 5000 250 50)
    echo "$py" | sed 's/^/    python: /'
    pyt() { t "$(echo "$py" | awk -v k="$1" '$1 == k {print $2 * 1000}')"; }
    row "Python: sparse matrix from the pairs (after read_csv $(pyt read_csv))" "$(pyt matrix)"
    row "Python: implicit CosineRecommender(K=50).fit" "$(pyt implicit_cosine)"
    row "Python: implicit BM25Recommender(K=50).fit" "$(pyt implicit_bm25)"
    row "Python: EASE in numpy ($ease_note)" "$(pyt numpy_ease)"

    # Cohorts: best of 3 each, interleaved with the floor.
    ms "$db" "SELECT count(*), sum(total_amount) FROM orders" >/dev/null
    floor="" cohort=""
    for _ in 1 2 3; do
        floor=$(min "$floor" "$(ms "$db" "SELECT count(*), sum(total_amount) FROM orders")")
        cohort=$(min "$cohort" "$(ms "$db" "SELECT count(*) FROM cohort_retention('month', 12, '$as_of')")")
    done
    row "floor: \`SELECT count(*), sum(total_amount) FROM orders\`, best of 3" "$(t "$floor")"
    row "cohort_retention('month', 12), best of 3 / floor" "$(t "$cohort") / $(ratio "$cohort" "$floor")"
    orders_csv=$OUT/orders_$db.csv
    q "$db" "COPY (SELECT user_id, (created_at AT TIME ZONE '$zone')::date AS created_at, total_amount FROM orders
                   WHERE status = ANY ($statuses) AND created_at < DATE '$as_of' + 1) TO '$orders_csv' WITH (FORMAT csv, HEADER)" >/dev/null
    py=$(RUNS=3 "$VENV/bin/python" "$ROOT/bench/products_python.py" cohorts "$orders_csv")
    echo "$py" | sed 's/^/    python: /'
    row "Python: pandas monthly cohorts, best of 3 (after read_csv $(pyt read_csv))" "$(pyt pandas_cohorts)"
    rm -f "$pairs" "$orders_csv"
    sections+=("### $label

| measurement | time |
|---|---|
$(printf '%s\n' "${rows[@]}")")
done

if [ "$WRITE" = 1 ]; then
    text="Measured $(date -u +%Y-%m-%d) by \`bash bench/products.sh\` on $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM; $("$PG_BIN/postgres" --version); $py_versions.
Settings as in the table above. Times from a fresh session (psql timing) unless said otherwise.

$(printf '%s\n\n' "${sections[@]}")"
    write_section products "$text"
fi
