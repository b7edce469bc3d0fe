-- The CDNOW purchases (23,570 customers), and an independent plain-SQL formulation of every
-- ml_user_ltv column: the two must agree exactly, at an as-of date where the 12-month horizon
-- has elapsed for some users only, and at the end of the data.
DROP TABLE IF EXISTS public.orders, public.users;
\getenv abs_srcdir PG_ABS_SRCDIR
\set cdnow_file :abs_srcdir '/../demo/cdnow/CDNOW_master.txt'
\i :abs_srcdir/../demo/load_cdnow.sql
SELECT count(*) AS users FROM public.users;
SELECT count(*) AS orders, sum(total_amount) AS revenue FROM public.orders;

CREATE FUNCTION pg_temp.plain_ltv(as_of date) RETURNS TABLE (user_id bigint, signup_date date,
    revenue_3m numeric, revenue_6m numeric, revenue_12m numeric, lifetime_revenue numeric,
    orders_3m int, orders_6m int, orders_12m int, orders_lifetime int, avg_order_value_3m numeric,
    avg_order_value_6m numeric, avg_order_value_12m numeric, avg_order_value_lifetime numeric,
    first_order_date date, last_order_date date, days_since_last_order int,
    horizon_3m_complete bool, horizon_6m_complete bool, horizon_12m_complete bool,
    orders_before_signup int, segment text)
LANGUAGE sql AS $$
    WITH u AS (
        SELECT u.user_id, (u.registered_at AT TIME ZONE 'UTC')::date AS signup FROM public.users u
    ), o AS (
        SELECT o.user_id, (o.created_at AT TIME ZONE 'UTC')::date AS d, o.total_amount AS amt
        FROM public.orders o WHERE o.status IN ('paid', 'shipped', 'completed')
    ), j AS (
        SELECT u.user_id, u.signup, o.d, o.amt,
               o.d >= u.signup AND o.d <= u.signup + interval '3 months' AS in3,
               o.d >= u.signup AND o.d <= u.signup + interval '6 months' AS in6,
               o.d >= u.signup AND o.d <= u.signup + interval '12 months' AS in12
        FROM u LEFT JOIN o ON o.user_id = u.user_id AND o.d <= as_of
    ), agg AS (
        SELECT user_id, signup,
               coalesce(sum(amt) FILTER (WHERE in3), 0) AS r3, count(*) FILTER (WHERE in3) AS n3,
               coalesce(sum(amt) FILTER (WHERE in6), 0) AS r6, count(*) FILTER (WHERE in6) AS n6,
               coalesce(sum(amt) FILTER (WHERE in12), 0) AS r12, count(*) FILTER (WHERE in12) AS n12,
               coalesce(sum(amt), 0) AS rl, count(amt) AS nl,
               min(d) AS first_d, max(d) AS last_d, count(*) FILTER (WHERE d < signup) AS before
        FROM j GROUP BY user_id, signup
    )
    SELECT user_id, signup, r3, r6, r12, rl, n3::int, n6::int, n12::int, nl::int,
           round(r3 / nullif(n3, 0), 2), round(r6 / nullif(n6, 0), 2),
           round(r12 / nullif(n12, 0), 2), round(rl / nullif(nl, 0), 2),
           first_d, last_d, as_of - last_d,
           (signup + interval '3 months')::date <= as_of, (signup + interval '6 months')::date <= as_of,
           (signup + interval '12 months')::date <= as_of, before::int,
           CASE WHEN rl >= 1000 THEN 'VIP' WHEN rl >= 500 THEN 'High' WHEN rl >= 100 THEN 'Medium'
                WHEN rl >= 50 THEN 'Low' ELSE 'New' END
    FROM agg
$$;

-- Rows of the plain formulation that ml_user_ltv lacks, and the other way round.
CREATE FUNCTION pg_temp.diff_vs_plain(as_of date, OUT missing bigint, OUT unexpected bigint)
LANGUAGE sql AS $$
    WITH ext AS (
        SELECT user_id, signup_date, revenue_3m, revenue_6m, revenue_12m, lifetime_revenue,
               orders_3m, orders_6m, orders_12m, orders_lifetime, avg_order_value_3m,
               avg_order_value_6m, avg_order_value_12m, avg_order_value_lifetime, first_order_date,
               last_order_date, days_since_last_order, horizon_3m_complete, horizon_6m_complete,
               horizon_12m_complete, orders_before_signup, segment
        FROM ml_user_ltv
    ), plain AS (
        SELECT * FROM pg_temp.plain_ltv(as_of)
    )
    SELECT (SELECT count(*) FROM (SELECT * FROM plain EXCEPT SELECT * FROM ext) d),
           (SELECT count(*) FROM (SELECT * FROM ext EXCEPT SELECT * FROM plain) d)
$$;

SELECT calculate_all_ltv('1998-02-15');
SELECT (SELECT count(*) FROM ml_user_ltv) AS users, d.missing, d.unexpected,
       (SELECT count(*) FILTER (WHERE horizon_12m_complete) FROM ml_user_ltv) AS mature_12m
FROM pg_temp.diff_vs_plain('1998-02-15') d;
SELECT orders_read, orders_counted, orders_skipped_after_as_of FROM ltv_last_run;

-- The same with the orders read by parallel workers: the planner is pushed to a parallel plan
-- on this small table, the plan shows the partial aggregates, and the result is the same.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT _ltv_orders(NULL::bytea, o.user_id, o.created_at, o.total_amount, o.status IS NULL, 2)
FROM public.orders o WHERE o.status = ANY ('{paid,shipped,completed}') OR o.status IS NULL;
SELECT calculate_all_ltv('1998-02-15');
SELECT * FROM pg_temp.diff_vs_plain('1998-02-15');
SELECT orders_read, orders_counted, orders_skipped_after_as_of FROM ltv_last_run;
-- With 23,570 users the parallel workers above folded into totals in shared memory; a single
-- user's read keeps its own totals in each process and merges them. Both give the same rows.
SET client_min_messages = warning;
SELECT count(*) AS per_user_rows_equal
FROM (SELECT user_id FROM ml_user_ltv ORDER BY lifetime_revenue DESC, user_id LIMIT 20) top
WHERE (SELECT (c.lifetime_revenue, c.orders_lifetime, c.revenue_12m, c.first_order_date,
               c.last_order_date, c.orders_before_signup)::text
       FROM calculate_user_ltv(top.user_id, '1998-02-15') c)
    = (SELECT (l.lifetime_revenue, l.orders_lifetime, l.revenue_12m, l.first_order_date,
               l.last_order_date, l.orders_before_signup)::text
       FROM ml_user_ltv l WHERE l.user_id = top.user_id);
RESET client_min_messages;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- The stored summary equals percentile_cont and avg over the same users in plain SQL.
WITH h(horizon, metric, mature) AS (VALUES ('3m', 'revenue_3m', 'horizon_3m_complete'),
        ('6m', 'revenue_6m', 'horizon_6m_complete'), ('12m', 'revenue_12m', 'horizon_12m_complete'),
        ('lifetime', 'lifetime_revenue', 'true')),
plain AS (
    SELECT h.horizon, x.*
    FROM h CROSS JOIN LATERAL (
        SELECT count(*) AS n, round(avg(v), 2) AS avg_v, percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS med,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY v) AS p95, count(*) FILTER (WHERE o > 0) AS buyers
        FROM (SELECT CASE h.metric WHEN 'revenue_3m' THEN revenue_3m WHEN 'revenue_6m' THEN revenue_6m
                                   WHEN 'revenue_12m' THEN revenue_12m ELSE lifetime_revenue END AS v,
                     CASE h.metric WHEN 'revenue_3m' THEN orders_3m WHEN 'revenue_6m' THEN orders_6m
                                   WHEN 'revenue_12m' THEN orders_12m ELSE orders_lifetime END AS o
              FROM ml_user_ltv
              WHERE CASE h.mature WHEN 'horizon_3m_complete' THEN horizon_3m_complete
                                  WHEN 'horizon_6m_complete' THEN horizon_6m_complete
                                  WHEN 'horizon_12m_complete' THEN horizon_12m_complete ELSE true END) s
    ) x
)
SELECT p.horizon, p.n = s.users_measured AS n_ok, p.buyers = s.users_with_orders AS buyers_ok,
       p.avg_v = round(s.revenue_sum / nullif(s.users_measured, 0), 2) AS avg_ok,
       p.med = s.median AS median_ok, p.p95 = s.p95 AS p95_ok
FROM plain p JOIN ml_ltv_summary s USING (horizon) ORDER BY p.n DESC, p.horizon;

SELECT calculate_all_ltv('1998-06-30');
SELECT d.missing, d.unexpected, (SELECT count(*) FROM ml_user_ltv) AS users
FROM pg_temp.diff_vs_plain('1998-06-30') d;
SELECT * FROM get_ltv_summary();
SELECT * FROM ltv_segments();

-- calculate_user_ltv agrees with the table for every 50th customer.
SELECT count(*) AS checked, count(*) FILTER (WHERE c.lifetime_revenue = l.lifetime_revenue
        AND c.revenue_3m = l.revenue_3m AND c.revenue_12m = l.revenue_12m
        AND c.orders_lifetime = l.orders_lifetime AND c.segment = l.segment
        AND c.days_since_last_order = l.days_since_last_order) AS equal
FROM ml_user_ltv l CROSS JOIN LATERAL calculate_user_ltv(l.user_id, '1998-06-30') c
WHERE l.user_id % 50 = 0;

-- The distribution counts every user above 0 once, the largest value included.
SELECT sum(users) AS users_in_bins, (SELECT count(*) FROM ml_user_ltv WHERE lifetime_revenue > 0) AS users_above_0,
       max(range_max) = (SELECT max(lifetime_revenue) FROM ml_user_ltv) AS max_is_last_edge
FROM ltv_distribution('lifetime_revenue', 20);
SELECT * FROM ltv_distribution('revenue_12m', 5);

-- The histograms stored by the refresh equal the ones computed from ml_user_ltv, for every
-- metric and stored bin count; a bin count that is not stored is computed.
SELECT (SELECT distribution_bins FROM ltv_last_run) AS stored_bins;
SELECT m.metric, k.bins,
       (SELECT count(*) FROM (SELECT * FROM ltv_distribution(m.metric, k.bins)
                              EXCEPT SELECT * FROM _ltv_distribution_live(m.metric, k.bins)) d) AS missing,
       (SELECT count(*) FROM (SELECT * FROM _ltv_distribution_live(m.metric, k.bins)
                              EXCEPT SELECT * FROM ltv_distribution(m.metric, k.bins)) d) AS unexpected,
       (SELECT count(*) FROM ltv_distribution(m.metric, k.bins)) AS bins_returned
FROM (VALUES ('revenue_3m'), ('revenue_6m'), ('revenue_12m'), ('lifetime_revenue')) m(metric)
CROSS JOIN (VALUES (10), (20), (50), (100)) k(bins)
ORDER BY 1, 2;
SELECT count(*) AS stored_rows FROM ml_ltv_distribution;
