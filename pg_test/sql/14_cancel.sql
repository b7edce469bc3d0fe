-- Every long computation gives up promptly when cancelled: here a 300 ms statement_timeout
-- cancels each while it works on the CDNOW customers (story 04), and each must end with the
-- cancel (57014, so it was still running at 300 ms) within 1.3 s of its start, including the
-- work on the backend's worker threads. Before this was fixed, kmeans_fit with a large k ran on
-- for 900 s and a far holdout evaluation for 29 s.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM reset_configuration();
SELECT count(*) > 0 AS fitted FROM clv_fit('cancel_bg', 'bgnbd', 'week', '1997-09-30');
RESET client_min_messages;
CREATE TEMP TABLE cancels (what text, sqlstate text, seconds numeric);
CREATE FUNCTION pg_temp.timed(what text, call text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
    state text := '00000';
BEGIN
    BEGIN
        EXECUTE call;
    EXCEPTION
        WHEN query_canceled THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
    END;
    INSERT INTO cancels VALUES (what, state, extract(epoch FROM clock_timestamp() - started));
END
$$;
-- The timeout fires inside pg_temp.timed, which records it: each call is its own statement.
-- Notices are off: how far a call gets before its cancel varies from run to run.
SET client_min_messages = warning;
SET statement_timeout = '300ms';
SELECT pg_temp.timed('K-means, k chosen by silhouette', $$SELECT * FROM kmeans_fit('c1', '1998-06-30', seed => 7)$$);
SELECT pg_temp.timed('K-means, k = 20', $$SELECT * FROM kmeans_fit('c2', '1998-06-30', 20)$$);
SELECT pg_temp.timed('holdout evaluation 90 years ahead', $$SELECT * FROM clv_holdout_evaluation('cancel_bg', '2087-06-30')$$);
SELECT pg_temp.timed('purchase probabilities', $$SELECT * FROM clv_purchase_probabilities('cancel_bg', 1516, 5000, 'week', 10000, '1998-06-30')$$);
SELECT pg_temp.timed('churn training, 104 weeks', $$SELECT * FROM churn_train('c4', as_of => '1998-06-30', snapshot_weeks => 104)$$);
SELECT pg_temp.timed('RFM sizes, 900 dates', $$SELECT * FROM rfm_segment_sizes('1997-01-01', '1999-06-18', '1 day')$$);
SELECT pg_temp.timed('anomalies, 52 weeks', $$SELECT * FROM calculate_all_anomalies('1998-06-30', 52)$$);
RESET statement_timeout;
RESET client_min_messages;
-- A fit with no maximum to find (customers who buy every week until the end and never drop out)
-- would run until its budget (60 s); it is cancelled as promptly.
CREATE SCHEMA steady;
CREATE TABLE steady.users AS SELECT u AS user_id, timestamptz '2023-01-01' + (u % 50) * interval '1 day' AS registered_at
FROM generate_series(1, 5000) u;
CREATE TABLE steady.orders AS
SELECT u * 100 + w AS order_id, u AS user_id,
       timestamptz '2023-01-01' + (u % 50) * interval '1 day' + (w * 7 + u % 5) * interval '1 day' AS created_at,
       'paid'::text AS status, (10 + u % 7)::numeric(12,2) AS total_amount
FROM generate_series(1, 5000) u, generate_series(0, 60) w
WHERE (u + w) % 3 <> 0;
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'steady.users', orders_table => 'steady.orders');
RESET client_min_messages;
SET statement_timeout = '300ms';
SELECT pg_temp.timed('Pareto/NBD fit without a maximum', $$SELECT * FROM clv_fit('c3', 'pareto_nbd', 'day', '2024-03-31')$$);
RESET statement_timeout;
SET client_min_messages = warning;
SELECT count(*) > 0 AS reset FROM reset_configuration();
RESET client_min_messages;
DROP SCHEMA steady CASCADE;
SELECT what, sqlstate, seconds < 1.3 AS prompt FROM cancels ORDER BY what;
-- Nothing was stored by the cancelled fits.
SELECT count(*) AS stored FROM ml_kmeans_models WHERE model_name IN ('c1', 'c2');
SELECT count(*) AS stored FROM ml_clv_models WHERE model_name = 'c3';
SELECT count(*) AS stored FROM ml_churn_models WHERE model_name = 'c4';
