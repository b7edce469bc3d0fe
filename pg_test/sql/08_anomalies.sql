-- Weekly behaviour with zero weeks, and anomaly rules that name themselves. Weeks run Monday to
-- Sunday; as of Sunday 2024-03-31 the last complete week starts Monday 2024-03-25.
CREATE SCHEMA an_fx;
CREATE TABLE an_fx.users (user_id bigint, registered_at timestamptz);
CREATE TABLE an_fx.orders (order_id bigserial, user_id bigint, created_at timestamptz, status text,
                           total_amount numeric(12,2), currency text DEFAULT 'USD');
INSERT INTO an_fx.users SELECT g, '2023-12-01' FROM generate_series(1, 6) g;
-- Users 1 and 2 buy 10.00 every Wednesday for eight weeks (from 2024-01-31); in the last week
-- user 1 spends 60.00 in two orders and user 2 buys nothing. User 3 buys every other week.
-- User 4 is new: 10.00 two weeks ago, then 90.00. User 5 buys steadily too, but one order has
-- no amount and one a negative amount. User 6 has a cancelled order only.
INSERT INTO an_fx.orders (user_id, created_at, status, total_amount)
SELECT u, DATE '2024-01-31' + 7 * w, 'paid', 10 FROM generate_series(0, 7) w, (VALUES (1), (2), (5)) v(u);
INSERT INTO an_fx.orders (user_id, created_at, status, total_amount) VALUES
    (1, '2024-03-26', 'paid', 25), (1, '2024-03-29', 'shipped', 35),
    (5, '2024-03-27', 'paid', 10), (5, '2024-03-27', 'paid', NULL), (5, '2024-03-28', 'paid', -3),
    (4, '2024-03-13', 'paid', 10), (4, '2024-03-27', 'paid', 90),
    (6, '2024-03-27', 'cancelled', 500),
    (1, '2024-04-02', 'paid', 999);   -- after the as-of date: expected, not reported
INSERT INTO an_fx.orders (user_id, created_at, status, total_amount)
SELECT 3, DATE '2024-01-31' + 14 * w, 'completed', 10 FROM generate_series(0, 3) w;
SELECT count(*) AS settings FROM configure_source(users_table => 'an_fx.users', orders_table => 'an_fx.orders');

-- User 2's weeks: the last one is present, with zeros.
SELECT * FROM user_behavior_weekly(2, '2024-03-31', 6);
-- User 3: zero weeks between purchases, and after the last one up to the last complete week.
SELECT week_start, orders, spend FROM user_behavior_weekly(3, '2024-03-31', 9);

-- Judge the last complete week: the spike, the drop to zero; not the every-other-week buyer,
-- not the new user (flagged for short history), and bad rows are counted.
SELECT * FROM calculate_all_anomalies('2024-03-31');
SELECT user_id, week_start, orders, spend, round(spend_z::numeric, 2) AS spend_z,
       round(spend_robust_z::numeric, 2) AS spend_robust_z, spend_ratio,
       round(anomaly_score::numeric, 3) AS score, is_anomaly, triggers, insufficient_history
FROM ml_user_anomalies_weekly ORDER BY user_id;
SELECT * FROM latest_anomalies();
SELECT * FROM anomaly_summary();
-- The same as of the Wednesday after: that week is not complete, so it is not judged yet.
SELECT weeks_judged, anomalies FROM calculate_all_anomalies('2024-04-03');
SELECT DISTINCT week_start FROM ml_user_anomalies_weekly;
-- Short histories reported when asked.
SELECT anomalies, insufficient_history FROM calculate_all_anomalies('2024-03-31', report_insufficient => true);
SELECT user_id, is_anomaly, insufficient_history FROM ml_user_anomalies_weekly WHERE user_id = 4;
-- Four weeks at once, and one user's history computed on the fly.
SELECT weeks_judged, anomalies FROM calculate_all_anomalies('2024-03-31', weeks => 4);
SELECT week_start, count(*) AS users FROM ml_user_anomalies_weekly GROUP BY 1 ORDER BY 1;
SELECT week_start, orders, spend, round(anomaly_score::numeric, 3) AS score, is_anomaly, triggers
FROM user_anomaly_history(1, '2024-03-31', 3);
-- Thresholds are parameters: with a z threshold of 100 and no ratio or robust rule firing below
-- 1000, user 1's spike is not an anomaly.
SELECT anomalies FROM calculate_all_anomalies('2024-03-31', z_threshold => 100, ratio_threshold => 1000,
                                              robust_threshold => 1000);

-- With order items and products next to the orders, each week counts its distinct categories
-- (a NULL category is not one); spend stays the orders' own totals, not multiplied by items.
CREATE TABLE an_fx.products (product_id bigint, category text);
CREATE TABLE an_fx.order_items (order_id bigint, product_id bigint);
INSERT INTO an_fx.products VALUES (1, 'books'), (2, 'music'), (3, NULL);
INSERT INTO an_fx.order_items SELECT o.order_id, CASE WHEN o.total_amount = 35 THEN 2 ELSE 1 END
    FROM an_fx.orders o WHERE o.user_id = 1;
INSERT INTO an_fx.order_items SELECT o.order_id, p FROM an_fx.orders o, (VALUES (1), (3)) v(p)
    WHERE o.user_id = 1 AND o.total_amount = 35;
SELECT week_start, orders, spend, categories FROM user_behavior_weekly(1, '2024-03-31', 3);
SELECT weeks_judged FROM calculate_all_anomalies('2024-03-31');
SELECT user_id, orders, spend, categories FROM ml_user_anomalies_weekly ORDER BY user_id;

-- Bad settings.
\set SHOW_CONTEXT never
SELECT * FROM calculate_all_anomalies('2024-03-31', window_weeks => 1);
SELECT * FROM calculate_all_anomalies('2024-03-31', ratio_threshold => 1);
SELECT * FROM calculate_all_anomalies('2024-03-31', z_threshold => 'NaN');
SELECT * FROM calculate_all_anomalies('2024-03-31', weeks => 0);
SELECT * FROM user_behavior_weekly(1, '2024-03-31', 0);
\set SHOW_CONTEXT errors
SELECT count(*) AS settings FROM reset_configuration();
DROP SCHEMA an_fx CASCADE;
