-- The in-memory row sources of the refreshes (src/write/row_source.rs): each reads the rows its
-- refresh computed from the backend's memory, for that refresh's own INSERT. Internal: any other
-- call is an error.

-- The rows calculate_all_ltv() is writing, read by its own INSERT from the backend's memory
-- (src/ltv/results.rs). Internal: any other call is an error.
CREATE FUNCTION @extschema@._ltv_pending_rows(token bigint)
RETURNS TABLE (user_id bigint, signup_date date, revenue_3m numeric, revenue_6m numeric,
    revenue_12m numeric, lifetime_revenue numeric, orders_3m integer, orders_6m integer,
    orders_12m integer, orders_lifetime integer, avg_order_value_3m numeric,
    avg_order_value_6m numeric, avg_order_value_12m numeric, avg_order_value_lifetime numeric,
    first_order_date date, last_order_date date,
    horizon_3m_complete boolean, horizon_6m_complete boolean, horizon_12m_complete boolean,
    orders_before_signup integer, segment text, fingerprint bytea)
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'cda_ltv_pending_rows';

-- The rows calculate_all_clv() is writing, read by its own INSERT from the backend's memory
-- (src/clv/store.rs). Internal: any other call is an error.
CREATE FUNCTION @extschema@._clv_pending_rows(token bigint)
RETURNS TABLE (user_id bigint, frequency integer, recency float8, t float8, monetary_value float8,
    probability_alive float8, expected_purchases float8, probability_no_purchase float8,
    expected_spend float8, clv float8)
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'cda_clv_pending_rows';

-- The rows calculate_all_anomalies() is writing, read by its own INSERT from the backend's memory
-- (src/anomaly/results.rs). Internal: any other call is an error.
CREATE FUNCTION @extschema@._anomaly_pending_rows(token bigint)
RETURNS TABLE (user_id bigint, week_start date, orders integer, spend float8, categories integer,
    orders_z float8, spend_z float8, spend_robust_z float8, orders_ratio float8, spend_ratio float8,
    anomaly_score float8, is_anomaly boolean, triggers text, insufficient_history boolean)
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'cda_anomaly_pending_rows';

-- The rows calculate_all_rfm() is writing, read by its own INSERT from the backend's memory
-- (src/rfm/store.rs). Internal: any other call is an error.
CREATE FUNCTION @extschema@._rfm_pending_rows(token bigint)
RETURNS TABLE (user_id bigint, fingerprint bytea, last_order_date date, frequency integer,
    revenue numeric, monetary numeric, r_score smallint, f_score smallint, m_score smallint,
    rfm_cell text, segment text)
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'cda_rfm_pending_rows';
