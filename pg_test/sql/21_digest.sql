-- The daily digest queued for the notifier: what is new since the previous digest only, within
-- Telegram's 4,096 characters, pointing to the dashboard for the rest.
CREATE SCHEMA dg_fx;
CREATE TABLE dg_fx.users (user_id bigint PRIMARY KEY, registered_at timestamptz NOT NULL);
CREATE TABLE dg_fx.orders (order_id bigint PRIMARY KEY, user_id bigint, created_at timestamptz,
                           status text, total_amount numeric(12,2));
INSERT INTO dg_fx.users SELECT i, '2023-01-01' FROM generate_series(1, 80) i;
INSERT INTO dg_fx.orders SELECT i, i, '2023-02-01'::timestamptz + i * interval '1 day', 'paid', 10 * i
FROM generate_series(1, 80) i;
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'dg_fx.users', orders_table => 'dg_fx.orders');
-- Earlier stories' scores and anomalies are not this shop's.
DELETE FROM ml_churn_scores;
DELETE FROM ml_user_anomalies_weekly;
RESET client_min_messages;
SELECT calculate_all_ltv('2024-06-30') AS users;

-- Three customers at high risk (one not active: left out), two anomalies in one week.
INSERT INTO ml_churn_scores (user_id, probability, risk_band, eligible, top_reasons, model_name, model_version, as_of_date, scored_at)
VALUES (7, 0.91, 'critical', true, '{}', 'churn', 1, '2024-06-30', now()),
       (70, 0.72, 'high', true, '{}', 'churn', 1, '2024-06-30', now()),
       (3, 0.40, 'medium', true, '{}', 'churn', 1, '2024-06-30', now()),
       (5, 0.95, 'critical', false, '{}', 'churn', 1, '2024-06-30', now());
INSERT INTO ml_user_anomalies_weekly (user_id, week_start, orders, spend, anomaly_score, is_anomaly, triggers, insufficient_history, as_of_date)
VALUES (12, '2024-06-17', 4, 820.5, 6.2, true, '{spend_ratio}', false, '2024-06-30'),
       (13, '2024-06-17', 9, 120, 4.1, true, '{orders_z}', false, '2024-06-30'),
       (14, '2024-06-17', 1, 10, 0.3, false, '{}', false, '2024-06-30');
SELECT queue_digest('https://shop.example/dash/') IS NOT NULL AS queued;
SELECT regexp_replace(body, E'digest, [^\\n]*', 'digest, <now>') AS body FROM cda_notifications ORDER BY notification_id DESC LIMIT 1;
-- Nothing new: nothing queued.
SELECT queue_digest('https://shop.example/dash') IS NULL AS nothing_new, count(*) AS notifications FROM cda_notifications;

-- A new refresh, one more customer at risk, an anomaly in a later week: only those.
SELECT calculate_all_ltv('2024-07-01') AS users;
INSERT INTO ml_churn_scores (user_id, probability, risk_band, eligible, top_reasons, model_name, model_version, as_of_date, scored_at)
VALUES (40, 0.66, 'high', true, '{}', 'churn', 1, '2024-07-01', now());
INSERT INTO ml_user_anomalies_weekly (user_id, week_start, orders, spend, anomaly_score, is_anomaly, triggers, insufficient_history, as_of_date)
VALUES (15, '2024-06-24', 2, 300, 5.0, true, '{spend_z}', false, '2024-07-01');
SELECT queue_digest() IS NOT NULL AS queued;
SELECT regexp_replace(body, E'digest, [^\\n]*', 'digest, <now>') AS body FROM cda_notifications ORDER BY notification_id DESC LIMIT 1;

-- Long lists: the first max_listed, then how many more and where; never past 4,096 characters.
INSERT INTO ml_churn_scores (user_id, probability, risk_band, eligible, top_reasons, model_name, model_version, as_of_date, scored_at)
SELECT 1000 + i, 0.8, 'high', true, '{}', 'churn', 1, '2024-07-01', now() FROM generate_series(1, 60) i;
SELECT queue_digest('https://shop.example/dash', 3) IS NOT NULL AS queued;
SELECT body ~ 'Newly at high churn risk: 60 customers' AS counted,
       body ~ 'and 57 more: https://shop.example/dash/churn' AS points_to_the_rest
FROM cda_notifications ORDER BY notification_id DESC LIMIT 1;
INSERT INTO ml_churn_scores (user_id, probability, risk_band, eligible, top_reasons, model_name, model_version, as_of_date, scored_at)
SELECT 2000 + i, 0.8, 'high', true, '{}', 'churn', 1, '2024-07-01', now() FROM generate_series(1, 60) i;
INSERT INTO ml_user_anomalies_weekly (user_id, week_start, orders, spend, anomaly_score, is_anomaly, triggers, insufficient_history, as_of_date)
SELECT 3000 + i, '2024-07-01', 3, 99.99, 5, true, '{spend_z,spend_ratio,orders_z,orders_ratio,spend_robust_z}', false, '2024-07-07'
FROM generate_series(1, 60) i;
SELECT queue_digest('https://shop.example/dash', 50) IS NOT NULL AS queued;
SELECT length(body) <= 4096 AS fits, body ~ E'\\.\\.\\. \\(cut at 4,096 characters; more in https://shop.example/dash\\)$' AS says_so
FROM cda_notifications ORDER BY notification_id DESC LIMIT 1;

-- Bad input.
SELECT queue_digest(max_listed => 0);
SELECT queue_digest('ftp://shop.example');
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM reset_configuration();
RESET client_min_messages;
