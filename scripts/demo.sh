#!/usr/bin/env bash
# The main job on the bundled demo data: installs what is missing, builds and installs the
# extension (release), starts a throwaway PostgreSQL 15, loads the CDNOW purchases, runs
# calculate_all_ltv() and calculate_all_rfm(), fits a K-means model and the CLV models, scores
# every customer's CLV, trains and validates churn and purchase models and scores every customer,
# judges the last week's anomalies, and prints the summaries; loads UCI Online Retail into a
# second database and shows its order items, the recommenders' evaluation, a customer's
# recommendations with their reasons and cohort retention; then starts the HTTP API on the demo
# database (loopback) and prints its URL and a working call.
# Idempotent; the second run takes seconds. Leaves the cluster running (see the last lines).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_toolchain
install_extension --release
start_cluster
recreate_db cda_demo
say "loading the CDNOW demo data (23,570 customers, 69,659 purchases)"
psql_ -d cda_demo -v cdnow_file="$ROOT/demo/cdnow/CDNOW_master.txt" -f "$ROOT/demo/load_cdnow.sql"
psql_ -d cda_demo -c "CREATE EXTENSION cda_analytics"
say "computing LTV as of 1998-06-30 (the end of the data)"
psql_ -d cda_demo -P footer=off <<'SQL'
\timing on
SELECT calculate_all_ltv('1998-06-30') AS users_computed;
\timing off
\echo
\echo get_ltv_summary(): horizon figures cover users whose horizon has fully elapsed
SELECT * FROM get_ltv_summary();
\echo ltv_distribution('revenue_6m', 10)
SELECT * FROM ltv_distribution('revenue_6m', 10);
\echo ltv_segments()
SELECT * FROM ltv_segments();
\echo get_ltv_insights()
SELECT * FROM get_ltv_insights();
\echo top 5 customers by lifetime revenue
SELECT user_id, signup_date, orders_lifetime, lifetime_revenue, revenue_12m, last_order_date, segment
FROM ml_user_ltv ORDER BY lifetime_revenue DESC, user_id LIMIT 5;
\echo
\timing on
SELECT calculate_all_rfm('1998-06-30') AS users_scored;
\timing off
\echo rfm_segment_summary(): RFM segments as of 1998-06-30
SELECT * FROM rfm_segment_summary();
\echo rfm_segment_migration('1997-12-31', '1998-06-30'): the largest moves
SELECT * FROM rfm_segment_migration('1997-12-31', '1998-06-30') WHERE from_segment <> to_segment
ORDER BY users DESC LIMIT 8;
\echo kmeans_fit('value', '1997-09-30', 4): clusters fitted on one snapshot ...
SELECT cluster, cluster_name, users, round(recency_days::numeric, 1) AS recency_days,
       round(frequency_90d::numeric, 2) AS frequency_90d, round(monetary_180d::numeric, 2) AS monetary_180d
FROM kmeans_fit('value', '1997-09-30', 4);
\echo ... and a later snapshot assigned to the same stored clusters
SELECT cluster, cluster_name, count(*) AS users FROM kmeans_assign('value', '1998-06-30') GROUP BY 1, 2 ORDER BY 1;
\echo
\echo predictive CLV: BG/NBD and Gamma-Gamma fitted on all 23,570 customers, weeks, calibration to 1997-09-30
SELECT parameter, round(estimate::numeric, 4) AS estimate, round(std_error::numeric, 4) AS std_error
FROM clv_fit('bg', 'bgnbd', 'week', '1997-09-30');
SELECT parameter, round(estimate::numeric, 4) AS estimate, round(std_error::numeric, 4) AS std_error
FROM clv_fit('gg', 'gamma_gamma', 'week', '1997-09-30');
\echo clv_holdout_evaluation('bg', '1998-06-30'): actual against predicted purchases in the 39 holdout weeks
SELECT frequency, customers, round(actual_mean::numeric, 3) AS actual_mean, round(predicted_mean::numeric, 3) AS predicted_mean,
       actual_total, round(predicted_total::numeric) AS predicted_total
FROM clv_holdout_evaluation('bg', '1998-06-30');
\echo calculate_all_clv('bg', 'gg', 12, 0.01, '1998-06-30'): everyone scored as of the end of the data
SELECT customers, round(expected_purchases::numeric) AS expected_purchases_12m, round(total_clv::numeric) AS total_clv_12m
FROM calculate_all_clv('bg', 'gg', 12, 0.01, '1998-06-30');
\echo the 5 highest predicted 12-month CLVs
SELECT user_id, frequency, round(recency::numeric, 1) AS recency_w, round(t::numeric, 1) AS t_w,
       round(probability_alive::numeric, 3) AS p_alive, round(expected_purchases::numeric, 2) AS purchases_12m,
       round(expected_spend::numeric, 2) AS spend, round(clv::numeric, 2) AS clv_12m
FROM ml_user_clv ORDER BY clv DESC, user_id LIMIT 5;
\echo
\echo churn_train('churn', as_of => '1998-06-30'): 26 weekly snapshots, the last 4 validating; validation metrics
\echo against the P(alive) baseline (BG/NBD refitted at every snapshot)
SELECT scorer, chosen, rows, positives, round(roc_auc::numeric, 3) AS roc_auc, round(pr_auc::numeric, 3) AS pr_auc,
       round(precision::numeric, 3) AS precision, round(recall::numeric, 3) AS recall, round(f1::numeric, 3) AS f1,
       round(top_decile_lift::numeric, 2) AS top_decile_lift
FROM churn_train('churn', as_of => '1998-06-30');
\echo calculate_all_churn('churn', '1998-06-30'): every customer scored into ml_churn_scores
SELECT customers, eligible, round(mean_probability::numeric, 3) AS mean_probability
FROM calculate_all_churn('churn', '1998-06-30');
SELECT * FROM churn_summary();
\echo churn_high_risk(0.6, 5): the active customers most at risk, with the reasons from the model
SELECT user_id, probability, risk_band, top_reasons FROM churn_high_risk(0.6, 5);
\echo churn_train('purchase_30d', 'purchase'): a purchase in the next 30 days
SELECT scorer, chosen, round(roc_auc::numeric, 3) AS roc_auc, round(pr_auc::numeric, 3) AS pr_auc,
       round(top_decile_lift::numeric, 2) AS top_decile_lift
FROM churn_train('purchase_30d', 'purchase', as_of => '1998-06-30');
\echo calculate_all_purchase('purchase_30d', '1998-06-30'): every customer scored into ml_purchase_scores
SELECT customers, eligible, round(mean_probability::numeric, 3) AS mean_probability
FROM calculate_all_purchase('purchase_30d', '1998-06-30');
\echo
\echo calculate_all_anomalies('1998-06-28'): the week of 1998-06-22 against the last 4 weeks of each customer
SELECT * FROM calculate_all_anomalies('1998-06-28');
SELECT * FROM latest_anomalies(1, 5);
SQL

# Products: UCI Online Retail (item-level invoices) in a database of its own, beside CDNOW.
recreate_db cda_demo_retail
say "loading UCI Online Retail (4,372 customers, 541,909 invoice lines) into cda_demo_retail"
psql_ -d cda_demo_retail -q -v retail_file="$ROOT/demo/online_retail/online_retail.csv.gz" \
    -f "$ROOT/demo/load_online_retail.sql"
psql_ -d cda_demo_retail -P footer=off <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION cda_analytics;
SELECT count(*) AS settings FROM configure_source(successful_statuses => ARRAY['completed'], time_zone => 'Europe/London');
SELECT count(*) AS settings FROM configure_items(non_product_column => 'is_non_product');
RESET client_min_messages;
\timing on
\echo
\echo order_items_report(): the invoice lines that count, and those left out and why
SELECT * FROM order_items_report('2011-12-09');
\echo
\echo evaluate_recommenders('2011-09-01', '100 days'): trained before September, tested to the end of the data (k = 20)
SELECT model, mode, users, round(hit_rate::numeric, 3) AS hit_rate, round(ndcg::numeric, 3) AS ndcg,
       round(coverage::numeric, 3) AS coverage
FROM evaluate_recommenders('2011-09-01', '100 days') WHERE k = 20 ORDER BY mode, ndcg DESC;
\echo
\echo train_recommender('default'), then the next products for customer 12347, and which of their products led to each
SELECT model_name, algorithm, customers, products, pairs FROM train_recommender('default', as_of => '2011-12-09');
SELECT r.rank, p.title, round(r.score::numeric, 3) AS score,
       (SELECT string_agg(b.title, '; ' ORDER BY array_position(r.because_of, b.product_id))
        FROM products b WHERE b.product_id = ANY (r.because_of)) AS because_of
FROM recommend(12347, 5, exclude_purchased => true) r JOIN products p USING (product_id) ORDER BY r.rank;
\echo
\echo price_elasticity(): from the prices customers paid, product and week effects; only ok is usable
SELECT level, round(elasticity::numeric, 2) AS elasticity, round(ci_low::numeric, 2) AS ci_low,
       round(ci_high::numeric, 2) AS ci_high, n_products, n_periods, reliability
FROM price_elasticity('all', to_date => '2011-12-09');
SELECT reliability, count(*) AS categories FROM price_elasticity('category', to_date => '2011-12-09') GROUP BY 1 ORDER BY 2 DESC;
\echo
\echo cohort_retention_summary(): mean monthly retention of the 2011 acquisition cohorts (December 2010 holds earlier customers)
SELECT period_number, cohorts, customers, round(100 * weighted_retention::numeric, 1) AS retention_pct
FROM cohort_retention_summary(as_of => '2011-12-09') WHERE period_number <= 6;
SQL

# The HTTP API and the dashboard on the demo database, on loopback: an analyst and an operator
# role, each with a token of its own (kept in $CDA_DIR/server.env, readable by this user only,
# reused by reruns); requests without a token read as the analyst.
say "starting cda-server (the HTTP API) on the demo database"
(cd "$ROOT" && cargo build --release --quiet -p cda-server)
psql_ -d cda_demo -q <<'SQL' >/dev/null
SET client_min_messages = warning;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cda_demo_analyst') THEN CREATE ROLE cda_demo_analyst; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cda_demo_operator') THEN CREATE ROLE cda_demo_operator; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cda_demo_api') THEN CREATE ROLE cda_demo_api LOGIN; END IF;
END $$;
GRANT cda_demo_analyst, cda_demo_operator TO cda_demo_api;
SELECT count(*) FROM grant_analytics_access('cda_demo_analyst', 'analyst');
SELECT count(*) FROM grant_analytics_access('cda_demo_operator', 'operator');
GRANT SELECT ON public.users, public.orders TO cda_demo_operator;
SQL
SERVER_ENV=$CDA_DIR/server.env
SERVER_PORT=${CDA_SERVER_PORT:-55480}
if [ ! -f "$SERVER_ENV" ]; then
    (umask 077
     echo "ANALYST_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$SERVER_ENV"
     echo "OPERATOR_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" >>"$SERVER_ENV")
fi
# shellcheck disable=SC1090
source "$SERVER_ENV"
# start_server NAME DB PORT: (re)starts cda-server on database DB at 127.0.0.1:PORT with the two
# roles' tokens, its pid and log in $CDA_DIR/NAME.pid and NAME.log, and waits until it is ready.
start_server() {
    local name=$1 db=$2 port=$3
    [ -f "$CDA_DIR/$name.pid" ] && kill "$(cat "$CDA_DIR/$name.pid")" 2>/dev/null && sleep 0.5
    CDA_DATABASE_URL="host=$CDA_DIR port=$CDA_PORT user=cda_demo_api dbname=$db" \
    CDA_LISTEN="127.0.0.1:$port" \
    CDA_API_KEYS="$ANALYST_TOKEN=cda_demo_analyst,$OPERATOR_TOKEN=cda_demo_operator" \
    CDA_ANONYMOUS_ROLE=cda_demo_analyst \
        nohup "$ROOT/target/release/cda-server" >"$CDA_DIR/$name.log" 2>&1 &
    echo $! >"$CDA_DIR/$name.pid"
    wait_for_http "http://127.0.0.1:$port/ready" && return 0
    cat "$CDA_DIR/$name.log"
    exit 1
}
start_server server cda_demo "$SERVER_PORT"
# A second server on the Online Retail database, for the products pages (recommendations,
# elasticity, cohorts), with the same roles and tokens.
RETAIL_PORT=$((SERVER_PORT + 1))
psql_ -d cda_demo_retail -q <<'SQL' >/dev/null
SET client_min_messages = warning;
SELECT count(*) FROM calculate_all_recommendations('default', 10, as_of => '2011-12-09');
SELECT count(*) FROM grant_analytics_access('cda_demo_analyst', 'analyst');
SELECT count(*) FROM grant_analytics_access('cda_demo_operator', 'operator');
GRANT SELECT ON public.users, public.orders, public.order_items, public.products TO cda_demo_operator;
SQL
start_server server-retail cda_demo_retail "$RETAIL_PORT"
echo "The dashboard:  http://127.0.0.1:$SERVER_PORT/  (read-only without logging in, on loopback only)"
echo "                http://127.0.0.1:$RETAIL_PORT/recommendations  (Online Retail: recommendations, elasticity, cohorts;"
echo "                log in at /login with the operator's token for the live sections)"
echo "The API:        http://127.0.0.1:$SERVER_PORT/api/v1/  (described at /openapi.json)"
echo "Try it:         curl -H 'Authorization: Bearer $ANALYST_TOKEN' http://127.0.0.1:$SERVER_PORT/api/v1/ltv/summary"
echo "                (the analyst's and the operator's tokens are in $SERVER_ENV)"
curl -s -H "Authorization: Bearer $ANALYST_TOKEN" "http://127.0.0.1:$SERVER_PORT/api/v1/rfm/segments" | head -c 300; echo ' ...'

say "done. Explore it:  $PG_BIN/psql -h $CDA_DIR -p $CDA_PORT -U postgres cda_demo"
echo "    stop it:        kill \$(cat $CDA_DIR/server.pid) \$(cat $CDA_DIR/server-retail.pid); $PG_BIN/pg_ctl -D $CDA_DIR/data stop$(is_root && echo '   (as the postgres user)')"
