-- Predictive CLV: customer summaries, maximum-likelihood fits that reproduce the published CDNOW
-- results from the raw orders, predictions with explicit time units, the holdout table,
-- ml_user_clv, and bad input.

-- Summary definitions on a hand-made shop: same-day purchases count once, the first day's spend
-- is left out of the mean, T runs to the calibration end, the holdout counts days after it.
CREATE SCHEMA clv_fx;
CREATE TABLE clv_fx.users (user_id bigint, registered_at timestamptz);
CREATE TABLE clv_fx.orders (order_id bigint, user_id bigint, created_at timestamptz, status text,
                            total_amount numeric(12,2), currency text);
INSERT INTO clv_fx.users VALUES (1, '2021-01-01'), (2, '2021-01-01'), (3, '2021-01-01'), (4, '2021-01-01');
INSERT INTO clv_fx.orders VALUES
    (1, 1, '2021-01-01 09:00+00', 'paid', 10, 'USD'), (2, 1, '2021-01-01 18:00+00', 'paid', 2, 'USD'),
    (3, 1, '2021-01-08 10:00+00', 'shipped', 1, 'USD'), (4, 1, '2021-01-08 11:00+00', 'paid', 3, 'USD'),
    (5, 1, '2021-01-15', 'completed', 5, 'USD'), (6, 1, '2021-02-01', 'paid', 4, 'USD'),
    (7, 1, '2021-02-01', 'paid', 6, 'USD'), (8, 1, '2021-03-01', 'paid', 8, 'USD'),
    (9, 2, '2021-01-10', 'paid', 9, 'USD'), (10, 2, '2021-01-12', 'cancelled', 500, 'USD'),
    (11, 3, '2021-01-25', 'paid', 7, 'USD');
SELECT count(*) AS settings FROM configure_source(users_table => 'clv_fx.users', orders_table => 'clv_fx.orders');
-- Calibration to 2021-01-22 (user 3 is not a customer yet), holdout to 2021-02-05.
SELECT * FROM clv_summary('week', '2021-01-22', '2021-02-05') ORDER BY user_id;
SELECT user_id, frequency, recency, t FROM clv_summary('day', '2021-01-22') ORDER BY user_id;
-- Bad rows are counted and left out; orders after the window's end are expected and not reported.
INSERT INTO clv_fx.orders VALUES (20, 1, '2021-01-20', 'paid', NULL, 'USD'), (21, 1, '2021-01-20', 'paid', -5, 'USD'),
    (22, 99, '2021-01-20', 'paid', 5, 'USD'), (23, 1, '2021-01-20', NULL, 5, 'USD'), (24, NULL, '2021-01-20', 'paid', 5, 'USD');
SELECT user_id, frequency, recency FROM clv_summary('week', '2021-01-22') ORDER BY user_id;
-- Bad arguments.
\set SHOW_CONTEXT never
SELECT * FROM clv_summary('month', '2021-01-22');
SELECT * FROM clv_summary('week', '2021-01-22', '2021-01-22');
SELECT * FROM clv_summary('week', 'infinity');
-- No customers at the calibration end; no repeat purchases, for the purchase and the spend models.
SELECT * FROM clv_fit('fx', 'bgnbd', 'week', '2020-12-31');
SELECT * FROM clv_fit('fx', 'bgnbd', 'week', '2021-01-05');
SELECT * FROM clv_fit('fx', 'gamma_gamma', 'week', '2021-01-05');
SELECT * FROM clv_fit('fx', 'paretonbd', 'week');
SELECT * FROM clv_fit('', 'bgnbd', 'week');
SELECT * FROM clv_fit('fx', 'bgnbd', 'fortnight');
SELECT * FROM clv_fit('fx', 'bgnbd', 'week', '2021-01-22', -0.1);
SELECT * FROM clv_fit('fx', 'bgnbd', 'week', '2021-01-22', 'NaN');
-- Everyone spends exactly the same: Gamma-Gamma's likelihood rises without end toward p -> inf,
-- v -> 0. That is an error, and no model is stored.
TRUNCATE clv_fx.orders;
INSERT INTO clv_fx.users SELECT g, '2021-01-01' FROM generate_series(100, 140) g;
INSERT INTO clv_fx.orders SELECT 1000 + g * 10 + k, g, DATE '2021-01-01' + k * 3, 'paid', 20, 'USD'
    FROM generate_series(100, 140) g, generate_series(0, 1 + g % 5) k;
SELECT * FROM clv_fit('same_spend', 'gamma_gamma', 'week', '2021-03-31');
SELECT count(*) AS stored FROM ml_clv_models WHERE model_name = 'same_spend';
\set SHOW_CONTEXT errors
SELECT count(*) AS settings FROM reset_configuration();
DROP SCHEMA clv_fx CASCADE;

-- The CDNOW sample of the literature: 2,357 customers, 6,919 purchase lines, as users and orders
-- (user ids are the sample's customer ids, 1..2357).
CREATE SCHEMA clv_cdnow;
\getenv abs_srcdir PG_ABS_SRCDIR
\set cdnow_schema clv_cdnow
\set sample_file :abs_srcdir '/../demo/cdnow/CDNOW_sample.txt'
\i :abs_srcdir/../demo/load_cdnow_sample.sql
SELECT count(*) AS customers, (SELECT count(*) FROM clv_cdnow.orders) AS lines FROM clv_cdnow.users;
-- The published summary (weeks, calibration to 1997-09-30), rounded there to 2 decimals.
CREATE TEMP TABLE published (id int, x int, t_x float8, t float8, zbar float8);
\set csv_file :abs_srcdir '/../demo/cdnow/cdnow_customers_summary_with_transactions.csv'
\set load_cmd '\\copy published FROM ' :'csv_file' ' WITH (FORMAT csv, HEADER)'
:load_cmd
SELECT count(*) AS settings FROM configure_source(users_table => 'clv_cdnow.users', orders_table => 'clv_cdnow.orders');

-- Our summaries equal the published ones; the holdout (weeks 40-78) has the published 1,882
-- repeat purchases.
SELECT count(*) AS customers,
       count(*) FILTER (WHERE s.frequency <> p.x OR abs(s.recency - p.t_x) > 0.005 + 1e-9 OR abs(s.t - p.t) > 0.005 + 1e-9
                        OR abs(coalesce(s.monetary_value, 0) - p.zbar) > 0.005 + 1e-9) AS differing,
       sum(s.holdout_frequency) AS holdout_purchases, min(s.holdout_duration) AS holdout_weeks
FROM clv_summary('week', '1997-09-30', '1998-06-30') s JOIN published p ON p.id = s.user_id;

-- BG/NBD: r = 0.2426, alpha = 4.4135, a = 0.7929, b = 2.4258, LL -9582.43 (FHL 2005). The
-- summary here is exact where the published file is rounded, so the last digits may move.
SELECT parameter, round(estimate::numeric, 3) AS estimate, round(std_error::numeric, 3) AS std_error
FROM clv_fit('bg', 'bgnbd', 'week', '1997-09-30');
SELECT model, time_unit, calibration_end, customers, abs(log_likelihood - -9582.43) < 0.5 AS ll_as_published,
       abs((parameters->>'r')::float8 - 0.2426) < 0.002 AND abs((parameters->>'alpha')::float8 - 4.4135) < 0.02
       AND abs((parameters->>'a')::float8 - 0.7929) < 0.005 AND abs((parameters->>'b')::float8 - 2.4258) < 0.02
           AS parameters_as_published,
       starts_at_best > 1 AS starts_agree, gradient_norm < 1e-4 AS converged
FROM ml_clv_models WHERE model_name = 'bg';
-- Customer 1516 (x = 26, t_x = 30.86, T = 31): about 25.76 purchases in 52 weeks, P(alive) about
-- 0.9689; a new customer: 1.444 in 52 weeks. The same questions in days give the same answers.
SELECT round(probability_alive::numeric, 4) AS p_alive, round(expected_purchases::numeric, 2) AS purchases_52w
FROM clv_predict('bg', 26, 30.86, 31, 'week', 52);
SELECT round(probability_alive::numeric, 4) AS p_alive, round(expected_purchases::numeric, 2) AS purchases_364d
FROM clv_predict('bg', 26, 30.86 * 7, 31 * 7, 'day', 364);
SELECT round(clv_expected_purchases_new('bg', 52, 'week')::numeric, 3) AS new_52w,
       round(clv_expected_purchases_new('bg', 364, 'day')::numeric, 3) AS new_364d;
-- The same customer read from the orders as of the calibration end.
SELECT frequency, round(recency::numeric, 2) AS recency, t, time_unit, round(probability_alive::numeric, 4) AS p_alive,
       round(expected_purchases::numeric, 2) AS purchases_52w, round(probability_no_purchase::numeric, 4) AS p_none
FROM clv_user('bg', 1516, 52, 'week', as_of => '1997-09-30');
-- Its distribution of purchases over the next 52 weeks; the probabilities of 0..400 sum to 1.
SELECT n, round(probability::numeric, 4) AS probability FROM clv_purchase_probabilities('bg', 1516, 52, 'week', 3, '1997-09-30');
SELECT round(sum(probability)::numeric, 9) AS total FROM clv_purchase_probabilities('bg', 1516, 52, 'week', 400, '1997-09-30');

-- The holdout table (BTYD): actual 0.237, 0.697, 1.393, 1.560, 2.532, 2.947, 3.862, 6.359 and
-- BG/NBD 0.225, 0.523, 1.044, 1.520, 2.164, 2.654, 3.504, 6.157 per calibration frequency; in
-- all, 1,882 actual against about 1,653 predicted.
SELECT frequency, customers, round(actual_mean::numeric, 3) AS actual, round(predicted_mean::numeric, 3) AS predicted,
       actual_total, round(predicted_total::numeric) AS predicted_total,
       round(mean_absolute_error::numeric, 3) AS mae, round(rmse::numeric, 3) AS rmse
FROM clv_holdout_evaluation('bg', '1998-06-30');

-- MBG/NBD (BTYDplus): r = 0.525, alpha = 6.183, a = 0.891, b = 1.614.
SELECT parameter, round(estimate::numeric, 3) AS estimate FROM clv_fit('mbg', 'mbgnbd', 'week', '1997-09-30');
-- Pareto/NBD: r = 0.5533, alpha = 10.578, s = 0.6062, beta = 11.668, LL -9594.97.
SELECT parameter, round(estimate::numeric, 3) AS estimate FROM clv_fit('pnbd', 'pareto_nbd', 'week', '1997-09-30');
SELECT model_name, abs(log_likelihood - -9594.97) < 0.5 AS ll_as_published FROM ml_clv_models WHERE model_name = 'pnbd';
-- Every fit has a budget (cda_analytics.fit_time_limit, 60 s by default, and a number of
-- likelihood evaluations): one that cannot finish within it is an error, and nothing is stored.
SET cda_analytics.fit_time_limit = '1ms';
SELECT * FROM clv_fit('pnbd_hurried', 'pareto_nbd', 'week', '1997-09-30');
\echo :LAST_ERROR_SQLSTATE
RESET cda_analytics.fit_time_limit;
SELECT count(*) AS stored FROM ml_clv_models WHERE model_name = 'pnbd_hurried';
SELECT round(probability_alive::numeric, 4) AS p_alive, round(expected_purchases::numeric, 2) AS purchases_52w
FROM clv_predict('pnbd', 26, 30.86, 31, 'week', 52);
-- Its purchase distribution (a one-dimensional integral here): it sums to 1, and its mean is the
-- expected purchases.
SELECT n, round(probability::numeric, 4) AS probability FROM clv_purchase_probabilities('pnbd', 1516, 52, 'week', 3, '1997-09-30');
SELECT round(sum(probability)::numeric, 6) AS total,
       abs(sum(n * probability) - (SELECT expected_purchases FROM clv_user('pnbd', 1516, 52, 'week', as_of => '1997-09-30'))) < 1e-6
           AS mean_is_expected
FROM clv_purchase_probabilities('pnbd', 1516, 52, 'week', 400, '1997-09-30');
-- Gamma-Gamma on the 946 repeat customers: p = 6.2488, q = 3.7446, v = 15.4477, LL -4055.92;
-- the first customer (x = 2, mean 22.35) spends about 24.66 per purchase.
SELECT parameter, round(estimate::numeric, 3) AS estimate FROM clv_fit('gg', 'gamma_gamma', 'week', '1997-09-30');
SELECT customers, abs(log_likelihood - -4055.92) < 0.5 AS ll_as_published FROM ml_clv_models WHERE model_name = 'gg';
SELECT round(clv_expected_spend('gg', 2, 22.35)::numeric, 2) AS customer_1, round(clv_expected_spend('gg', 0)::numeric, 2) AS new_customer;

-- Score everyone into ml_user_clv: 12 months, 1% a month.
SELECT customers, round(expected_purchases::numeric) AS expected_purchases, round(total_clv::numeric) AS total_clv
FROM calculate_all_clv('bg', 'gg', 12, 0.01, '1997-09-30');
-- The stored rows equal the per-user function, and the CLV equals the discounted monthly sum
-- written out in SQL from clv_predict and clv_expected_spend.
SELECT count(*) AS users, count(*) FILTER (WHERE abs(c.probability_alive - u.probability_alive) > 1e-12
       OR abs(c.expected_purchases - u.expected_purchases) > 1e-9) AS differing
FROM ml_user_clv c, LATERAL clv_user('bg', c.user_id, 12 * 365.25 / 12, 'day', 'gg', '1997-09-30') u
WHERE c.user_id % 50 = 1;
WITH c AS (SELECT * FROM ml_user_clv WHERE user_id IN (1, 1516)),
months AS (
    SELECT c.user_id, i, (clv_predict('bg', c.frequency, c.recency, c.t, 'week', i * 365.25 / 12 / 7)).expected_purchases AS cum
    FROM c, generate_series(0, 12) i
), increments AS (
    SELECT user_id, i, cum - lag(cum) OVER (PARTITION BY user_id ORDER BY i) AS inc FROM months
)
SELECT c.user_id, round(c.clv::numeric, 2) AS clv,
       abs(c.clv - (SELECT sum(clv_expected_spend('gg', c.frequency, c.monetary_value) * inc / 1.01 ^ i)
                    FROM increments WHERE increments.user_id = c.user_id AND i > 0)) < 1e-9 AS equals_sql
FROM c ORDER BY c.user_id;
SELECT user_id, frequency, round(probability_alive::numeric, 4) AS p_alive, round(expected_purchases::numeric, 2) AS purchases,
       round(expected_spend::numeric, 2) AS spend, round(clv::numeric, 2) AS clv, model_name, spend_model_name, time_unit
FROM ml_user_clv ORDER BY clv DESC, user_id LIMIT 3;

-- Bad input: unknown model, a spend model where a purchase model belongs and back, a user without
-- purchases, horizons and units, a holdout before the calibration end, a hand-edited model with
-- q <= 1 (infinite mean spend).
\set SHOW_CONTEXT never
SELECT * FROM clv_predict('nope', 1, 1, 2, 'week', 52);
SELECT * FROM clv_predict('gg', 1, 1, 2, 'week', 52);
SELECT clv_expected_spend('bg', 1, 10);
SELECT * FROM clv_user('bg', 999999, 52, 'week');
SELECT * FROM clv_predict('bg', 1, 1, 2, 'month', 52);
SELECT * FROM clv_predict('bg', 1, 1, 2, 'week', -1);
-- Horizons whose cost grows without bound are refused: at most 100 years ahead.
SELECT * FROM clv_predict('bg', 1, 1, 2, 'week', 1e9);
SELECT * FROM clv_holdout_evaluation('bg', '9999-12-31');
SELECT * FROM clv_predict('bg', 1, 3, 2, 'week', 52);
-- Repeat purchases are days after the first purchase day: no more of them than recency has days.
SELECT * FROM clv_predict('bg', 30, 2, 10, 'week', 52);
SELECT * FROM clv_predict('bg', 5, 4, 10, 'day', 30);
SELECT probability_alive > 0 AS fourteen_days_hold_fourteen FROM clv_predict('bg', 14, 2, 10, 'week', 52);
SELECT * FROM clv_predict('bg', -1, 0, 2, 'week', 52);
SELECT * FROM clv_holdout_evaluation('bg', '1997-09-30');
SELECT * FROM calculate_all_clv('bg', horizon_months => -1);
INSERT INTO ml_clv_models (model_name, model, time_unit, calibration_end, parameters, std_errors, log_likelihood,
    customers, distinct_rows, penalizer, iterations, gradient_norm, starts, starts_at_best, fit_ms)
    SELECT 'gg_edited', model, time_unit, calibration_end, '{"p": 6.2, "q": 0.9, "v": 15.4}', std_errors,
           log_likelihood, customers, distinct_rows, penalizer, iterations, gradient_norm, starts, starts_at_best, fit_ms
    FROM ml_clv_models WHERE model_name = 'gg';
SELECT clv_expected_spend('gg_edited', 2, 22.35);
-- A failed refresh leaves the previous results as they were.
SELECT * FROM calculate_all_clv('bg', 'gg_edited', 12, 0.01, '1997-09-30');
SELECT count(*) AS rows_kept, min(spend_model_name) AS spend_model FROM ml_user_clv;
\set SHOW_CONTEXT errors
-- A penalizer (lifetimes' L2 penalty on the time-rescaled parameters) shrinks the estimates
-- and costs likelihood.
SELECT parameter, round(estimate::numeric, 3) AS estimate FROM clv_fit('bg_penalized', 'bgnbd', 'week', '1997-09-30', 0.1);
SELECT p.log_likelihood < f.log_likelihood AS lower_likelihood
FROM ml_clv_models p, ml_clv_models f WHERE p.model_name = 'bg_penalized' AND f.model_name = 'bg';
SELECT count(*) AS settings FROM reset_configuration();
DROP SCHEMA clv_cdnow CASCADE;
