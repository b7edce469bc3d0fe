-- Cohort retention on the CDNOW customers (story 04): the published reference values, an
-- independent plain-SQL formulation of every cell that must agree exactly (month, week and
-- quarter periods, first-time and recurring cohorts, "on" and "on or after"), zeros as zeros,
-- complete and left-censored cells, the summary, and bad input.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM reset_configuration();
RESET client_min_messages;

-- Every CDNOW customer first bought in the first quarter of 1997 (products.md 4.3: 7,846 /
-- 8,476 / 7,248).
SELECT cohort_start, cohort_size, is_left_censored
FROM cohort_retention(as_of => '1998-06-30') WHERE period_number = 0 ORDER BY 1;
-- Month-1 retention 14.75 / 15.48 / 14.24 %; January, months 2 to 6: 12.29, 10.32, 8.65, 9.38,
-- 9.18 %; January's revenue retention, months 1 to 3: 20.4, 16.9, 13.6 %.
SELECT cohort_start, period_number, round(100 * retention::numeric, 2) AS retention_pct,
       round(100 * revenue_retention::numeric, 1) AS revenue_retention_pct
FROM cohort_retention(as_of => '1998-06-30')
WHERE period_number = 1 OR (cohort_start = '1997-01-01' AND period_number BETWEEN 2 AND 6)
ORDER BY 1, 2;
-- Pooled, weighted by cohort size, months 1 to 3: 14.85, 11.44, 9.97 %. January holds the
-- earliest order, so by default it counts as left-censored and is left out; CDNOW's customers
-- were drawn from those who first bought in 1997, so the data start is 1997-01-01.
SELECT period_number, cohorts, customers, round(100 * weighted_retention::numeric, 2) AS weighted_pct,
       round(100 * simple_retention::numeric, 2) AS simple_pct
FROM cohort_retention_summary(as_of => '1998-06-30', data_start => '1997-01-01')
WHERE period_number BETWEEN 0 AND 3 ORDER BY 1;
SELECT period_number, cohorts, customers
FROM cohort_retention_summary(as_of => '1998-06-30') WHERE period_number <= 1 ORDER BY 1;

-- The definitions in plain SQL: cohort = the period of a customer's first successful order (or
-- every period they ordered in, for recurring cohorts); a cell for every period number up to
-- max_n that has started by as_of; active = customers with an order in that period (or in it or
-- a later one of the horizon, for "on or after"); revenue summed exactly.
CREATE FUNCTION pg_temp.plain_cohorts(unit text, max_n int, as_of date, recurring bool, cumulative bool)
RETURNS TABLE (cohort_start date, period_number int, cohort_size bigint, active_customers bigint,
               orders bigint, revenue numeric, revenue_per_customer numeric,
               cumulative_revenue_per_customer numeric, is_complete bool)
LANGUAGE sql AS $$
    WITH step AS (
        SELECT CASE unit WHEN 'quarter' THEN interval '3 months' ELSE ('1 ' || unit)::interval END AS i
    ), o AS (
        SELECT o.user_id, date_trunc(unit, (o.created_at AT TIME ZONE 'UTC')::date)::date AS p, o.total_amount AS amt
        FROM public.orders o JOIN public.users u ON u.user_id = o.user_id
        WHERE o.status IN ('paid', 'shipped', 'completed')
          AND (o.created_at AT TIME ZONE 'UTC')::date <= as_of
          AND (u.registered_at AT TIME ZONE 'UTC')::date <= as_of
    ), up AS (
        SELECT user_id, p, count(*) AS n, sum(amt) AS rev FROM o GROUP BY user_id, p
    ), members AS (
        SELECT DISTINCT user_id, CASE WHEN recurring THEN p ELSE min(p) OVER (PARTITION BY user_id) END AS c FROM up
    ), last_in_horizon AS (
        SELECT m.user_id, m.c, max(up.p) AS last_p
        FROM members m JOIN up ON up.user_id = m.user_id
        WHERE up.p >= m.c AND up.p <= (m.c + max_n * (SELECT i FROM step))::date
        GROUP BY m.user_id, m.c
    ), grid AS (
        SELECT m.c, k, m.user_id, (m.c + k * (SELECT i FROM step))::date AS pk
        FROM members m, generate_series(0, max_n) k
        WHERE (m.c + k * (SELECT i FROM step))::date <= as_of
    ), per AS (
        SELECT g.c, g.k, count(*) AS size,
               count(*) FILTER (WHERE CASE WHEN cumulative THEN l.last_p >= g.pk ELSE up.n IS NOT NULL END) AS active,
               coalesce(sum(up.n), 0) AS orders, coalesce(sum(up.rev), 0) AS revenue
        FROM grid g
        LEFT JOIN up ON up.user_id = g.user_id AND up.p = g.pk
        LEFT JOIN last_in_horizon l ON l.user_id = g.user_id AND l.c = g.c
        GROUP BY g.c, g.k
    )
    SELECT c, k, size, active, orders, revenue, round(revenue / size, 2),
           round(sum(revenue) OVER (PARTITION BY c ORDER BY k) / size, 2),
           CASE WHEN cumulative THEN (c + (max_n + 1) * (SELECT i FROM step))::date <= as_of + 1
                ELSE (c + (k + 1) * (SELECT i FROM step))::date <= as_of + 1 END
    FROM per
$$;
CREATE FUNCTION pg_temp.disagreements(unit text, max_n int, as_of date, recurring bool, cumulative bool)
RETURNS bigint LANGUAGE sql AS $$
    WITH ext AS (
        SELECT cohort_start, period_number, cohort_size, active_customers, orders, revenue,
               revenue_per_customer, cumulative_revenue_per_customer, is_complete
        FROM cohort_retention(unit, max_n, as_of, CASE WHEN recurring THEN 'recurring' ELSE 'first_time' END, cumulative)
    ), plain AS (SELECT * FROM pg_temp.plain_cohorts(unit, max_n, as_of, recurring, cumulative))
    SELECT (SELECT count(*) FROM (SELECT * FROM ext EXCEPT SELECT * FROM plain) a)
         + (SELECT count(*) FROM (SELECT * FROM plain EXCEPT SELECT * FROM ext) b)
$$;
SELECT unit, max_n, as_of, recurring, cumulative,
       (SELECT count(*) FROM pg_temp.plain_cohorts(unit, max_n, as_of, recurring, cumulative)) AS cells,
       pg_temp.disagreements(unit, max_n, as_of, recurring, cumulative) AS disagreements
FROM (VALUES ('month', 12, date '1998-06-30', false, false),
             ('month', 18, date '1998-03-15', false, false),
             ('week', 30, date '1997-06-30', false, false),
             ('day', 60, date '1997-03-31', false, false),
             ('quarter', 6, date '1998-06-30', false, false),
             ('month', 6, date '1998-06-30', true, false),
             ('month', 6, date '1998-06-30', false, true),
             ('week', 8, date '1997-04-20', true, true)) v(unit, max_n, as_of, recurring, cumulative);

-- Zeros are rows: the daily table has every started day of every cohort, active or not, and
-- none after as_of.
WITH t AS (SELECT * FROM cohort_retention('day', 60, '1997-03-31'))
SELECT count(*) AS cells, count(*) FILTER (WHERE active_customers = 0) AS empty_cells,
       count(*) = (SELECT sum(least(60, '1997-03-31'::date - c) + 1)
                   FROM (SELECT DISTINCT cohort_start AS c FROM t) x) AS every_started_day,
       max(cohort_start + period_number) <= '1997-03-31' AS none_in_the_future
FROM t;
-- The period holding as_of has started but not ended: returned, and marked incomplete.
SELECT cohort_start, period_number, is_complete
FROM cohort_retention('month', 12, '1998-03-15') WHERE cohort_start = '1997-03-01' AND period_number >= 11;

-- Bad input: a clear error naming the argument.
SELECT * FROM cohort_retention('year');
SELECT * FROM cohort_retention(max_periods => -1);
SELECT * FROM cohort_retention(max_periods => 1001);
SELECT * FROM cohort_retention(retention_type => 'rolling');
SELECT * FROM cohort_retention(period => NULL);
SELECT * FROM cohort_retention(as_of => 'infinity');
SELECT * FROM cohort_retention_summary(include_censored => NULL);
