-- The views for BI tools: customer_latest (one row per user, the latest result of every
-- capability, plain columns) and run_history_daily (the refreshes per day, for time series).
CREATE SCHEMA bi_fx;
CREATE TABLE bi_fx.users (user_id bigint PRIMARY KEY, registered_at timestamptz NOT NULL);
CREATE TABLE bi_fx.orders (order_id bigint PRIMARY KEY, user_id bigint, created_at timestamptz,
                           status text, total_amount numeric(12,2));
INSERT INTO bi_fx.users VALUES (9000001, '2023-01-10'), (9000002, '2023-03-01'), (9000003, '2024-01-05'),
                               (9000004, '2024-02-01');
INSERT INTO bi_fx.orders VALUES
    (1, 9000001, '2023-01-12', 'paid', 1200.00), (2, 9000001, '2024-06-01', 'paid', 300.00),
    (3, 9000002, '2023-03-05', 'completed', 40.00), (4, 9000003, '2024-01-06', 'shipped', 80.00),
    (5, 9000003, '2024-03-06', 'shipped', 20.00), (6, 9000003, '2024-06-20', 'cancelled', 999.00);
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'bi_fx.users', orders_table => 'bi_fx.orders');
RESET client_min_messages;
SELECT calculate_all_ltv('2024-06-30') AS ltv_users, calculate_all_rfm('2024-06-30') AS rfm_users;

-- One row per user, typed, with the LTV and RFM values as the results tables hold them; the
-- capabilities that did not run for these users are NULL, anomalies 0.
SELECT user_id, lifetime_revenue, orders_lifetime, days_since_last_order, value_segment, rfm_segment,
       r_score, f_score, m_score, cluster_name, clv, churn_risk_band, anomalous_weeks
FROM customer_latest ORDER BY user_id;
SELECT count(*) AS differ FROM (
    SELECT user_id, lifetime_revenue, segment, last_order_date, as_of_date FROM ml_user_ltv
    EXCEPT SELECT user_id, lifetime_revenue, value_segment, last_order_date, ltv_as_of FROM customer_latest) d;
SELECT count(*) AS differ FROM (
    SELECT user_id, segment, r_score, f_score, m_score, as_of_date FROM ml_user_rfm
    EXCEPT SELECT user_id, rfm_segment, r_score, f_score, m_score, rfm_as_of FROM customer_latest) d;
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a WHERE a.attrelid = 'customer_latest'::regclass AND a.attnum > 0
  AND (a.attndims > 0 OR format_type(a.atttypid, a.atttypmod) LIKE '%[]') ORDER BY a.attnum;

-- Per day: the runs of every story so far finished today; the day's last LTV run is this one.
SELECT sum(ltv_runs) = (SELECT count(*) FROM ml_ltv_runs) AS every_ltv_run,
       sum(rfm_runs) = (SELECT count(*) FROM ml_rfm_runs) AS every_rfm_run
FROM run_history_daily;
SELECT day = current_date AS today, ltv_users, ltv_orders_counted, ltv_orders_left_out, ltv_as_of, rfm_customers_scored
FROM run_history_daily ORDER BY day DESC LIMIT 1;

SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM reset_configuration();
RESET client_min_messages;
