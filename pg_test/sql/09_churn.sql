-- Churn and purchase prediction: labels and features at their edges, features that cannot see
-- past the snapshot, a model that learns a planted signal better than P(alive), every customer
-- scored with reasons, and bad input.
CREATE SCHEMA ch_fx;
CREATE TABLE ch_fx.users (user_id bigint, registered_at timestamptz);
CREATE TABLE ch_fx.orders (order_id bigserial, user_id bigint, created_at timestamptz, status text,
                           total_amount numeric(12,2), currency text DEFAULT 'USD');
SELECT count(*) AS settings FROM configure_source(users_table => 'ch_fx.users', orders_table => 'ch_fx.orders');

-- Hand-built customers around a snapshot on 2024-06-30 (label windows (D, D+60] for churn and
-- (D, D+30] for purchase; eligible: first order 30+ days before D, an order in (D-180, D]).
INSERT INTO ch_fx.users SELECT g, '2023-01-01' FROM generate_series(1, 6) g;
INSERT INTO ch_fx.orders (user_id, created_at, status, total_amount) VALUES
    (1, '2024-05-31', 'paid', 10), (1, '2024-08-29', 'paid', 10),      -- 30 days before; D+60: not churned
    (2, '2024-06-01', 'paid', 10), (2, '2024-08-30', 'paid', 10),      -- 29 days before: not eligible
    (3, '2024-01-02', 'paid', 10),                                     -- D-180: not eligible
    (4, '2024-01-03', 'paid', 40), (4, '2024-04-01', 'shipped', 20),   -- D-179: eligible; churned
    (4, '2024-04-01', 'paid', 30), (4, '2024-06-30 12:00', 'paid', 8),
    (4, '2024-07-30', 'cancelled', 99),
    (5, '2024-03-01', 'paid', 10), (5, '2024-07-30', 'completed', 10), -- bought at D+30
    (6, '2024-03-01', 'paid', NULL);                                   -- no counted order
SELECT snapshot_date, split, user_id, label
FROM churn_labels(as_of => '2024-08-29', snapshot_weeks => 12, validation_weeks => 1)
WHERE snapshot_date = '2024-06-30' ORDER BY user_id;
SELECT snapshot_date, user_id, label
FROM churn_labels('purchase', as_of => '2024-07-30', snapshot_weeks => 8, validation_weeks => 1)
WHERE snapshot_date = '2024-06-30' ORDER BY user_id;
-- User 4 at D = 2024-06-30: 4 orders on 3 days; 90 days back is 2024-04-01, outside.
SELECT user_id, eligible, recency_days, frequency_90d, frequency_180d, monetary_90d, monetary_180d,
       aov_180d, orders_lifetime, revenue_lifetime, tenure_days, ipt_mean_days,
       round(ipt_std_days::numeric, 4) AS ipt_std_days, round(recency_to_ipt::numeric, 4) AS recency_to_ipt,
       round(spend_trend::numeric, 4) AS spend_trend, single_purchase_day, categories_180d, p_alive
FROM churn_features('2024-06-30', btyd_model => 'none') ORDER BY user_id;

-- With order items and products next to the orders, categories_180d counts user 4's distinct
-- categories over (D-180, D]: the one bought after D and the NULL category do not count.
CREATE TABLE ch_fx.products (product_id bigint, category text);
CREATE TABLE ch_fx.order_items (order_id bigint, product_id bigint);
INSERT INTO ch_fx.products VALUES (1, 'books'), (2, 'music'), (3, NULL), (4, 'games'), (5, 'toys');
INSERT INTO ch_fx.order_items
SELECT o.order_id, CASE WHEN o.total_amount = 40 THEN 1 WHEN o.total_amount = 20 THEN 2
                        WHEN o.total_amount = 30 THEN 3 ELSE 4 END
FROM ch_fx.orders o WHERE o.user_id = 4;
INSERT INTO ch_fx.orders (user_id, created_at, status, total_amount) VALUES (4, '2024-07-02', 'paid', 5);
INSERT INTO ch_fx.order_items SELECT max(order_id), 5 FROM ch_fx.orders;
SELECT user_id, orders_lifetime, categories_180d FROM churn_features('2024-06-30', btyd_model => 'none')
WHERE user_id IN (4, 5) ORDER BY user_id;
DROP TABLE ch_fx.products, ch_fx.order_items;

-- A shop of 1,500 customers who buy every 20 to 35 days until they leave (an exponential
-- lifetime of 300 days); in their last 90 days their orders are a third of their usual value.
TRUNCATE ch_fx.users, ch_fx.orders;
CREATE FUNCTION ch_fx.u01(bigint, int) RETURNS float8 LANGUAGE sql IMMUTABLE
    AS $$ SELECT ((hashint8($1 * 1000 + $2)::bigint + 2147483648) % 1000000 + 0.5) / 1000000.0 $$;
INSERT INTO ch_fx.users SELECT g, '2022-12-01' FROM generate_series(1, 1500) g;
INSERT INTO ch_fx.orders (user_id, created_at, status, total_amount)
SELECT u, o.day, 'paid',
       round(((20 + 60 * ch_fx.u01(u, 1)) * (0.8 + 0.4 * ch_fx.u01(u, 100 + k))
             * CASE WHEN o.day > c.ends - 90 THEN 1.0 / 3 ELSE 1 END)::numeric, 2)
FROM generate_series(1, 1500) u
CROSS JOIN LATERAL (SELECT DATE '2023-01-01' + (400 * ch_fx.u01(u, 2))::int AS starts,
                           -300 * ln(ch_fx.u01(u, 3)) AS ends_after) s
CROSS JOIN LATERAL (SELECT s.starts + s.ends_after::int AS ends) c
CROSS JOIN LATERAL generate_series(0, 40) k
CROSS JOIN LATERAL (SELECT s.starts + 27 * k + (7 * ch_fx.u01(u, 200 + k))::int AS day) o
WHERE o.day < c.ends AND o.day <= DATE '2025-01-31';
-- Bad rows are left out and reported; orders after an explicit as-of date are expected.
INSERT INTO ch_fx.orders (user_id, created_at, status, total_amount) VALUES
    (1, '2024-05-01', 'paid', NULL), (2, '2024-05-01', NULL, 10), (1, '2025-03-01', 'paid', 10);
SELECT count(*) AS orders, count(DISTINCT user_id) AS customers FROM ch_fx.orders;

-- No feature reads data after D: orders added after 2024-06-30 change no feature on it, P(alive)
-- included (BG/NBD is fitted on the data up to D too).
CREATE TEMP TABLE before_d AS SELECT * FROM churn_features('2024-06-30');
INSERT INTO ch_fx.orders (user_id, created_at, status, total_amount)
SELECT user_id, '2024-07-01', 'paid', 1000 FROM ch_fx.users WHERE user_id % 3 = 0;
SELECT count(*) AS rows_before, count(*) FILTER (WHERE p_alive IS NOT NULL) AS with_p_alive FROM before_d;
SELECT count(*) AS changed FROM (
    (SELECT * FROM before_d EXCEPT SELECT * FROM churn_features('2024-06-30'))
    UNION ALL
    (SELECT * FROM churn_features('2024-06-30') EXCEPT SELECT * FROM before_d)) d;
DELETE FROM ch_fx.orders WHERE created_at = '2024-07-01' AND total_amount = 1000;

-- Training: weekly snapshots, the last 4 validate, a 60-day gap before them. The logistic
-- regression learns the warning and beats both chance and the P(alive) baseline clearly.
CREATE TEMP TABLE trained AS SELECT * FROM churn_train('churn', as_of => '2025-01-31');
SELECT scorer, chosen, rows, positives, roc_auc > 0.9 AS auc_above_090, threshold > 0 AND threshold < 1 AS threshold_ok,
       true_positives + false_positives + true_negatives + false_negatives = rows AS confusion_adds_up,
       top_decile_lift > 1 AS lift_above_1
FROM trained ORDER BY scorer;
SELECT (SELECT roc_auc FROM trained WHERE chosen) > (SELECT roc_auc FROM trained WHERE scorer = 'p_alive') + 0.03
       AS beats_p_alive,
       (SELECT roc_auc FROM trained WHERE chosen) = (SELECT max(roc_auc) FROM trained WHERE scorer <> 'p_alive')
       AS best_kept;
SELECT model_name, version, target, classifier, array_length(features, 1) AS features, label_days,
       min_tenure_days, active_days, btyd_model, as_of_date, array_length(training_snapshots, 1) AS training_weeks,
       validation_snapshots, sample_rate
FROM ml_churn_models;
SELECT scorer, split, chosen FROM ml_churn_model_metrics ORDER BY scorer, split;
-- The stored validation metrics are what churn_train returned.
SELECT count(*) AS differ FROM trained t JOIN ml_churn_model_metrics m
    ON m.scorer = t.scorer AND m.split = 'validation'
WHERE (m.roc_auc, m.pr_auc, m.f1, m.rows) IS DISTINCT FROM (t.roc_auc, t.pr_auc, t.f1, t.rows);

-- Every customer is scored; bands follow the probabilities; reasons come from the model.
SELECT customers, eligible, round(mean_probability::numeric, 4) AS mean_probability, above_threshold, model_version
FROM calculate_all_churn('churn', '2025-01-31');
SELECT count(*) AS scored, count(*) FILTER (WHERE eligible) AS eligible,
       count(*) FILTER (WHERE risk_band <> CASE WHEN probability >= 0.8 THEN 'critical'
           WHEN probability >= 0.6 THEN 'high' WHEN probability >= 0.4 THEN 'medium' ELSE 'low' END) AS wrong_band,
       count(*) FILTER (WHERE cardinality(top_reasons) BETWEEN 1 AND 3) AS with_reasons
FROM ml_churn_scores;
SELECT risk_band, customers > 0 AS some FROM churn_summary();
SELECT count(*) AS rows, bool_and(probability >= 0.8) AS all_above,
       bool_and(top_reasons[1] ~ '^[a-z0-9_]+ = [-0-9.]+ \(\+[0-9.]+\)$') AS reason_format
FROM churn_high_risk(0.8, 5);
-- Active customers by default; the lapsed ones when asked.
SELECT bool_and(eligible) AS active_only, count(*) = (SELECT count(*) FROM ml_churn_scores WHERE eligible) AS all_active
FROM churn_high_risk(0, 10000);
SELECT count(*) = (SELECT count(*) FROM ml_churn_scores) AS everyone FROM churn_high_risk(0, 10000, include_lapsed => true);
-- One customer on the fly equals their stored score.
SELECT abs(u.probability - s.probability) < 1e-9 AS same_probability, u.band = s.risk_band AS same_band,
       u.top_reasons = s.top_reasons AS same_reasons
FROM ml_churn_scores s, churn_user(s.user_id, 'churn', '2025-01-31') u
WHERE s.user_id = (SELECT min(user_id) FROM ml_churn_scores WHERE eligible);
-- The refresh remembers the BG/NBD fit it made for that date, which per-customer calls on the same
-- date reuse; on another date the model is fitted anew on every customer.
SELECT btyd_fit_as_of, cardinality(btyd_fit_parameters) AS parameters FROM ml_churn_models WHERE model_name = 'churn';
SELECT target, band IS NOT NULL AS banded FROM churn_user((SELECT min(user_id) FROM ml_churn_scores WHERE eligible),
                                                         'churn', '2025-01-24');
-- A retrain raises the version.
SELECT count(*) AS scorers FROM churn_train('churn', as_of => '2025-01-31', btyd_model => 'none');
SELECT version, btyd_model, array_position(features, 'p_alive') AS p_alive, btyd_fit_as_of FROM ml_churn_models;

-- Purchase in the next 30 days through the same machinery.
SELECT scorer, chosen, roc_auc > 0.8 AS auc_above_080 FROM churn_train('purchase_30d', 'purchase', as_of => '2025-01-31')
ORDER BY scorer;
SELECT customers, model_version FROM calculate_all_purchase('purchase_30d', '2025-01-31');
SELECT count(*) FILTER (WHERE band <> CASE WHEN probability >= 0.6 THEN 'high' WHEN probability >= 0.3 THEN 'medium'
           ELSE 'low' END) AS wrong_band
FROM ml_purchase_scores;
-- Churn and purchase probabilities run opposite ways.
SELECT corr(c.probability, p.probability) < -0.5 AS opposite
FROM ml_churn_scores c JOIN ml_purchase_scores p USING (user_id);

-- Bad input.
SELECT * FROM churn_train('x', 'retention');
-- Training that would take more memory than cda_analytics.training_memory is refused before any
-- row is built, and says how many rows would fit.
SET cda_analytics.training_memory = '1MB';
SELECT * FROM churn_train('x', as_of => '2025-01-31');
RESET cda_analytics.training_memory;
SELECT * FROM churn_train('x', btyd_model => 'gamma_gamma');
SELECT * FROM churn_train('x', snapshot_weeks => 6, validation_weeks => 4);
SELECT * FROM churn_train('x', label_days => 0);
SELECT * FROM churn_train('', as_of => '2025-01-31');
SELECT * FROM churn_train('x', as_of => '2023-01-15');           -- no eligible customer
SELECT * FROM calculate_all_churn('nope');
SELECT * FROM calculate_all_purchase('churn', '2025-01-31');
SELECT * FROM churn_user(999999, 'churn', '2025-01-31');
SELECT * FROM churn_high_risk(1.5);
-- A single class: customers who never stop buying never churn.
CREATE SCHEMA ch_one;
CREATE TABLE ch_one.users (user_id bigint, registered_at timestamptz);
CREATE TABLE ch_one.orders (order_id bigserial, user_id bigint, created_at timestamptz, status text,
                            total_amount numeric(12,2), currency text);
INSERT INTO ch_one.users SELECT g, '2023-01-01' FROM generate_series(1, 20) g;
INSERT INTO ch_one.orders (user_id, created_at, status, total_amount)
SELECT u, DATE '2023-01-02' + 7 * w, 'paid', 10 FROM generate_series(1, 20) u, generate_series(0, 100) w;
SELECT count(*) AS settings FROM configure_source(users_table => 'ch_one.users', orders_table => 'ch_one.orders');
SELECT * FROM churn_train('one', as_of => '2024-12-01', btyd_model => 'none');
SELECT count(*) AS settings FROM configure_source(users_table => 'ch_fx.users', orders_table => 'ch_fx.orders');
-- A failed refresh leaves the previous scores as they were.
CREATE FUNCTION ch_fx.fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
CREATE TRIGGER fail_on_write BEFORE INSERT ON ml_churn_scores FOR EACH ROW EXECUTE FUNCTION ch_fx.fail();
SELECT * FROM calculate_all_churn('churn', '2025-01-31');
DROP TRIGGER fail_on_write ON ml_churn_scores;
SELECT count(*) AS still_scored, min(model_version) AS version FROM ml_churn_scores;

SELECT count(*) AS settings FROM reset_configuration();
DROP SCHEMA ch_fx, ch_one CASCADE;
