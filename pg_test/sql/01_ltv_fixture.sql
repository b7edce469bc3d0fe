-- Five users whose every number is worked out by hand below, as of 2024-06-30, dates in UTC.
SET TimeZone = 'America/New_York';  -- the session zone must not matter: dates are taken in UTC
CREATE TABLE public.users (user_id bigint PRIMARY KEY, registered_at timestamptz NOT NULL, email text);
CREATE TABLE public.orders (order_id bigint PRIMARY KEY, user_id bigint, created_at timestamptz,
                            status text, total_amount numeric(12,2), currency text DEFAULT 'USD');
INSERT INTO public.users VALUES
    (1, '2023-01-31 10:00+00', 'a@example.com'),
    (2, '2024-02-29 09:00+00', NULL),
    (3, '2024-01-10 09:00+00', NULL),
    (4, '2024-01-01 00:30-05', NULL),   -- 05:30 UTC: signup 2024-01-01 in UTC and in New York
    (5, '2023-06-01 12:00+00', NULL);
INSERT INTO public.orders (order_id, user_id, created_at, status, total_amount) VALUES
    -- user 1, signup 2023-01-31: 3m ends Apr 30 (Jan 31 + 3 months), 6m Jul 31, 12m 2024-01-31
    (101, 1, '2023-01-31 12:00+00', 'paid',      100.00),  -- signup day: 3m
    (102, 1, '2023-04-30 23:30+00', 'shipped',    50.00),  -- last day of 3m, included
    (103, 1, '2023-05-01 00:10+00', 'completed',  25.50),  -- 6m
    (104, 1, '2023-07-31 08:00+00', 'completed',  10.00),  -- last day of 6m
    (105, 1, '2023-08-01 08:00+00', 'completed',   4.00),  -- 12m
    (106, 1, '2024-02-01 08:00+00', 'completed', 1000.00), -- after 12m: lifetime only
    (107, 1, '2023-03-01 08:00+00', 'cancelled',  999.00), -- not a successful status
    (108, 1, '2023-03-02 08:00+00', 'created',      5.00), -- not a successful status
    -- user 2, signup 2024-02-29: 3m ends 2024-05-29 (elapsed), 6m 2024-08-29 (not yet)
    (201, 2, '2024-02-28 08:00+00', 'paid',  20.00),  -- the day before signup: lifetime only
    (202, 2, '2024-05-29 08:00+00', 'paid',  30.00),  -- last day of 3m
    (203, 2, '2024-05-30 08:00+00', 'paid',  40.00),  -- 6m
    (204, 2, '2024-07-01 08:00+00', 'paid', 500.00),  -- after the as-of date: not counted
    -- user 3 never ordered. user 4, signup 2024-01-01: 3m ends 2024-04-01
    (401, 4, '2024-04-01 23:30-04', 'paid', 60.00),   -- 2024-04-02 03:30 UTC: 6m, not 3m
    -- user 5, signup 2023-06-01: exactly 500.00 in lifetime is High
    (501, 5, '2023-06-01 13:00+00', 'paid', 499.99),
    (502, 5, '2023-06-02 13:00+00', 'paid',   0.01);

SELECT calculate_all_ltv('2024-06-30');

-- Expected rows, by hand:
-- user 1: 3m 100+50 = 150.00 (2); 6m +25.50+10 = 185.50 (4); 12m +4 = 189.50 (5);
--         lifetime +1000 = 1189.50 (6); AOV 75.00, 46.38 (46.375 rounds up), 37.90, 198.25;
--         last order 2024-02-01, 150 days before 2024-06-30; VIP.
-- user 2: 3m 30.00 (1); 6m 70.00 (2); 12m 70.00 (2); lifetime 20+30+40 = 90.00 (3), one order
--         before signup; AOV 30.00, 35.00, 35.00, 30.00; last 2024-05-30, 31 days; Low.
-- user 3: zeros, no averages, no dates; New.
-- user 4: 3m 0 (0), 6m/12m/lifetime 60.00 (1); last 2024-04-02, 89 days; Low.
-- user 5: 500.00 (2) everywhere, AOV 250.00; last 2023-06-02, 394 days; High.
CREATE TEMP TABLE expected (user_id bigint, signup_date date, revenue_3m numeric, revenue_6m numeric,
    revenue_12m numeric, lifetime_revenue numeric, orders_3m int, orders_6m int, orders_12m int,
    orders_lifetime int, avg_order_value_3m numeric, avg_order_value_6m numeric,
    avg_order_value_12m numeric, avg_order_value_lifetime numeric, first_order_date date,
    last_order_date date, days_since_last_order int, horizon_3m_complete bool,
    horizon_6m_complete bool, horizon_12m_complete bool, orders_before_signup int, segment text);
INSERT INTO expected VALUES
 (1, '2023-01-31', 150.00, 185.50, 189.50, 1189.50, 2, 4, 5, 6, 75.00, 46.38, 37.90, 198.25,
  '2023-01-31', '2024-02-01', 150, true, true, true, 0, 'VIP'),
 (2, '2024-02-29', 30.00, 70.00, 70.00, 90.00, 1, 2, 2, 3, 30.00, 35.00, 35.00, 30.00,
  '2024-02-28', '2024-05-30', 31, true, false, false, 1, 'Low'),
 (3, '2024-01-10', 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  true, false, false, 0, 'New'),
 (4, '2024-01-01', 0, 60.00, 60.00, 60.00, 0, 1, 1, 1, NULL, 60.00, 60.00, 60.00,
  '2024-04-02', '2024-04-02', 89, true, false, false, 0, 'Low'),
 (5, '2023-06-01', 500.00, 500.00, 500.00, 500.00, 2, 2, 2, 2, 250.00, 250.00, 250.00, 250.00,
  '2023-06-01', '2023-06-02', 394, true, true, true, 0, 'High');

-- Differences in either direction (none expected), then the rows themselves.
(SELECT 'missing' AS diff, * FROM expected
 EXCEPT SELECT 'missing', user_id, signup_date, revenue_3m, revenue_6m, revenue_12m, lifetime_revenue,
    orders_3m, orders_6m, orders_12m, orders_lifetime, avg_order_value_3m, avg_order_value_6m,
    avg_order_value_12m, avg_order_value_lifetime, first_order_date, last_order_date,
    days_since_last_order, horizon_3m_complete, horizon_6m_complete, horizon_12m_complete,
    orders_before_signup, segment FROM ml_user_ltv)
UNION ALL
(SELECT 'unexpected', user_id, signup_date, revenue_3m, revenue_6m, revenue_12m, lifetime_revenue,
    orders_3m, orders_6m, orders_12m, orders_lifetime, avg_order_value_3m, avg_order_value_6m,
    avg_order_value_12m, avg_order_value_lifetime, first_order_date, last_order_date,
    days_since_last_order, horizon_3m_complete, horizon_6m_complete, horizon_12m_complete,
    orders_before_signup, segment FROM ml_user_ltv
 EXCEPT SELECT 'unexpected', * FROM expected);
SELECT user_id, revenue_3m, revenue_6m, revenue_12m, lifetime_revenue, avg_order_value_6m,
       days_since_last_order AS days, segment, as_of_date FROM ml_user_ltv ORDER BY user_id;

-- The per-user function computes the same rows without writing.
CREATE FUNCTION pg_temp.users_equal_to_per_user(as_of date) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM ml_user_ltv l
    WHERE (SELECT row(c.*)::text FROM calculate_user_ltv(l.user_id, as_of) c)
        = (SELECT row(l2.user_id, l2.signup_date, l2.revenue_3m, l2.revenue_6m, l2.revenue_12m,
                      l2.lifetime_revenue, l2.orders_3m, l2.orders_6m, l2.orders_12m, l2.orders_lifetime,
                      l2.avg_order_value_3m, l2.avg_order_value_6m, l2.avg_order_value_12m,
                      l2.avg_order_value_lifetime, l2.first_order_date, l2.last_order_date,
                      l2.days_since_last_order, l2.horizon_3m_complete, l2.horizon_6m_complete,
                      l2.horizon_12m_complete, l2.orders_before_signup, l2.segment, l2.as_of_date,
                      now())::text FROM ml_user_ltv l2 WHERE l2.user_id = l.user_id)
$$;
SELECT pg_temp.users_equal_to_per_user('2024-06-30') AS users_equal;
SELECT count(*) AS unknown_user_rows FROM calculate_user_ltv(999, '2024-06-30');

-- Summary, by hand. 3m: all 5 users measured, values 150, 30, 0, 0, 500: average 136.00,
-- median 30.00, p95 = 150 + 0.8 * (500 - 150) = 430.00, 3 with orders.
-- 6m: users 1 and 5 (the others' 6 months have not elapsed): 185.50, 500: average 342.75,
-- median 342.75, p95 = 185.50 + 0.95 * 314.50 = 484.275 -> 484.28.
-- 12m: users 1 and 5: 189.50, 500: average 344.75, p95 = 189.50 + 0.95 * 310.50 = 484.475 -> 484.48.
-- lifetime: 1189.50, 90, 0, 60, 500: average 367.90, median 90.00,
-- p95 = 500 + 0.8 * 689.50 = 1051.60, 4 buyers.
SELECT * FROM get_ltv_summary();
-- Insights: CAC = 342.75 * margin 1; growth on the 12m cohort (users 1, 5) = 689.50 / 685.50 = 1.006;
-- buyers 4 of 5 = 80%.
SELECT * FROM get_ltv_insights();
SELECT recommended_max_cac, cac_margin FROM get_ltv_insights(0.5);
-- A margin that is not a positive number is refused.
\set SHOW_CONTEXT never
SELECT * FROM get_ltv_insights(-1);
SELECT * FROM get_ltv_insights('NaN');
\set SHOW_CONTEXT errors
-- Segments: VIP user 1, High user 5, Low users 2 and 4, New user 3.
SELECT * FROM ltv_segments();
-- Lifetime values above 0 are 60, 90, 500, 1189.50: two bins of width 564.75; the maximum is in
-- the last bin.
SELECT * FROM ltv_distribution('lifetime_revenue', 2);
-- revenue_6m counts only users 1 and 5, whose 6 months have elapsed.
SELECT * FROM ltv_distribution('revenue_6m', 3);
-- The run record: 13 orders read (the cancelled and created ones are never read), 12 counted,
-- one after the as-of date, one before its user's signup.
SELECT users, users_read, orders_read, orders_counted, orders_skipped_after_as_of,
       orders_before_signup, amount_scale, users_source, orders_source, time_zone
FROM ltv_last_run;

-- A refresh rewrites only the stored rows whose values changed (ml_user_ltv reads them with the
-- run's as-of date). The same as-of date again writes nothing: the rows stay the same tuples.
SELECT rows_written, rows_removed FROM ltv_last_run;
CREATE TEMP TABLE tuples AS SELECT user_id, ctid AS tid FROM ml_user_ltv_rows;
SELECT calculate_all_ltv('2024-06-30');
SELECT rows_written, rows_removed FROM ltv_last_run;
SELECT count(*) AS same_tuples FROM ml_user_ltv_rows r JOIN tuples t USING (user_id) WHERE r.ctid = t.tid;
-- A day later, days_since_last_order moves for every buyer without a write. User 2's order of
-- 2024-07-01 (500.00) now counts, and user 4's 6 months (to 2024-07-01) have elapsed: only their
-- two rows are rewritten.
SELECT calculate_all_ltv('2024-07-01');
SELECT rows_written, rows_removed FROM ltv_last_run;
SELECT user_id AS rewritten FROM ml_user_ltv_rows r JOIN tuples t USING (user_id) WHERE r.ctid <> t.tid ORDER BY 1;
-- The changed rows are removed by place with the planner's sequential scans and JIT turned off
-- for that one statement; the caller's settings are as they were.
SELECT current_setting('enable_seqscan') AS enable_seqscan, current_setting('jit') AS jit;
SELECT user_id, lifetime_revenue, days_since_last_order AS days, horizon_6m_complete AS h6,
       segment, as_of_date FROM ml_user_ltv ORDER BY user_id;
-- A user gone from the source loses their row; a stored fingerprint that is not one (a row
-- edited by hand, here one short and one long enough to be stored compressed) gets its row
-- rewritten.
DELETE FROM public.users WHERE user_id = 3;
UPDATE ml_user_ltv_rows SET fingerprint = '\x00' WHERE user_id = 5;
UPDATE ml_user_ltv_rows SET fingerprint = convert_to(repeat('not a fingerprint ', 300), 'UTF8')
WHERE user_id = 4;
SELECT user_id, pg_column_size(fingerprint) AS stored_bytes FROM ml_user_ltv_rows
WHERE user_id IN (4, 5) ORDER BY user_id;
SELECT calculate_all_ltv('2024-07-01');
SELECT rows_written, rows_removed FROM ltv_last_run;
SELECT user_id, lifetime_revenue, segment FROM ml_user_ltv ORDER BY user_id;
INSERT INTO public.users VALUES (3, '2024-01-10 09:00+00', NULL);
-- Back to 2024-06-30: users 2, 3 and 4 are written again, and every row equals the per-user
-- function's.
SELECT calculate_all_ltv('2024-06-30');
SELECT rows_written, rows_removed FROM ltv_last_run;
SELECT pg_temp.users_equal_to_per_user('2024-06-30') AS users_equal;

-- The time zone is a setting: in New York, user 4's order of 2024-04-01 23:30 falls on the last
-- day of the 3-month horizon.
SELECT setting, value FROM configure_source(time_zone => 'America/New_York') WHERE setting = 'time_zone';
SELECT revenue_3m, revenue_6m, first_order_date FROM calculate_user_ltv(4, '2024-06-30');
SELECT count(*) FROM reset_configuration();

-- Thresholds are configurable; the next run uses them.
SELECT count(*) FROM configure_ltv(segment_vip => 2000, segment_high => 1000, segment_medium => 80, segment_low => 10);
SELECT calculate_all_ltv('2024-06-30');
SELECT user_id, lifetime_revenue, segment FROM ml_user_ltv ORDER BY user_id;
SELECT segment, min_lifetime_revenue, users FROM ltv_segments();
SELECT count(*) FROM reset_configuration();

-- Without an as-of date the run is as of today (in the configured zone): every order is in the past.
SELECT calculate_all_ltv();
SELECT as_of_date = (now() AT TIME ZONE 'UTC')::date AS as_of_is_today, orders_counted FROM ltv_last_run;
RESET TimeZone;

-- The reads turn parallel_leader_participation off for their own statements when the workers
-- fill the cores (src/spi_read.rs; 64 workers do on any machine): the setting is back as it was
-- within the same transaction.
BEGIN;
SET LOCAL max_parallel_workers_per_gather = 64;
SELECT calculate_all_ltv('2024-06-30') AS users_written;
SHOW parallel_leader_participation;
SELECT count(*) AS event_users FROM user_features('2024-06-30');
SHOW parallel_leader_participation;
ROLLBACK;
