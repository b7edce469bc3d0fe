-- The baselines the extension is measured against, and timing helpers. Loaded into the benchmark
-- database after the extension (schema public), into schema bench.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

-- The columns of ml_user_ltv (a view over the stored rows) with its primary key, so that every
-- contender pays for the same index.
CREATE TABLE bench.hand_ltv (LIKE public.ml_user_ltv, PRIMARY KEY (user_id));
CREATE TABLE bench.loop_ltv (LIKE public.ml_user_ltv, PRIMARY KEY (user_id));

-- The best single hand-written statement we found: FILTER aggregates over users LEFT JOIN
-- orders, horizon ends computed once per user, replacing the table's contents in one
-- transaction (DELETE + INSERT, as the extension does). Same semantics as calculate_all_ltv with
-- the default configuration: dates in UTC, horizons inclusive of their last day, orders before
-- signup in lifetime only, nothing after as_of, NULL or negative amounts left out.
CREATE FUNCTION bench.hand_refresh(as_of date) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM bench.hand_ltv;
    INSERT INTO bench.hand_ltv (user_id, signup_date, revenue_3m, revenue_6m, revenue_12m,
        lifetime_revenue, orders_3m, orders_6m, orders_12m, orders_lifetime, avg_order_value_3m,
        avg_order_value_6m, avg_order_value_12m, avg_order_value_lifetime, first_order_date,
        last_order_date, days_since_last_order, horizon_3m_complete, horizon_6m_complete,
        horizon_12m_complete, orders_before_signup, segment, as_of_date, calculated_at)
    WITH u AS (
        SELECT s.user_id, s.signup, (s.signup + interval '3 months')::date AS e3,
               (s.signup + interval '6 months')::date AS e6, (s.signup + interval '12 months')::date AS e12
        FROM (SELECT user_id, (registered_at AT TIME ZONE 'UTC')::date AS signup FROM public.users) s
        WHERE s.signup <= as_of
    ), o AS (
        SELECT user_id, (created_at AT TIME ZONE 'UTC')::date AS d, total_amount AS amt
        FROM public.orders
        WHERE status IN ('paid', 'shipped', 'completed') AND total_amount >= 0
    ), agg AS (
        SELECT u.user_id, u.signup, u.e3, u.e6, u.e12,
               coalesce(sum(o.amt) FILTER (WHERE o.d >= u.signup AND o.d <= u.e3), 0) AS r3,
               count(*) FILTER (WHERE o.d >= u.signup AND o.d <= u.e3) AS n3,
               coalesce(sum(o.amt) FILTER (WHERE o.d >= u.signup AND o.d <= u.e6), 0) AS r6,
               count(*) FILTER (WHERE o.d >= u.signup AND o.d <= u.e6) AS n6,
               coalesce(sum(o.amt) FILTER (WHERE o.d >= u.signup AND o.d <= u.e12), 0) AS r12,
               count(*) FILTER (WHERE o.d >= u.signup AND o.d <= u.e12) AS n12,
               coalesce(sum(o.amt), 0) AS rl, count(o.amt) AS nl,
               min(o.d) AS first_d, max(o.d) AS last_d, count(*) FILTER (WHERE o.d < u.signup) AS bs
        FROM u LEFT JOIN o ON o.user_id = u.user_id AND o.d <= as_of
        GROUP BY u.user_id, u.signup, u.e3, u.e6, u.e12
    )
    SELECT user_id, signup, r3, r6, r12, rl, n3, n6, n12, nl,
           round(r3 / nullif(n3, 0), 2), round(r6 / nullif(n6, 0), 2),
           round(r12 / nullif(n12, 0), 2), round(rl / nullif(nl, 0), 2),
           first_d, last_d, as_of - last_d, e3 <= as_of, e6 <= as_of, e12 <= as_of, bs,
           CASE WHEN rl >= 1000 THEN 'VIP' WHEN rl >= 500 THEN 'High' WHEN rl >= 100 THEN 'Medium'
                WHEN rl >= 50 THEN 'Low' ELSE 'New' END,
           as_of, now()
    FROM agg;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The original platform's shape: a PL/pgSQL loop with one aggregate query per user (through the
-- index on orders.user_id), on the first max_users users by id. Same semantics as above.
CREATE FUNCTION bench.loop_refresh(as_of date, max_users integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    u record;
    n bigint := 0;
BEGIN
    DELETE FROM bench.loop_ltv;
    FOR u IN
        SELECT s.user_id, s.signup, (s.signup + interval '3 months')::date AS e3,
               (s.signup + interval '6 months')::date AS e6, (s.signup + interval '12 months')::date AS e12
        FROM (SELECT user_id, (registered_at AT TIME ZONE 'UTC')::date AS signup FROM public.users
              ORDER BY user_id LIMIT max_users) s
        WHERE s.signup <= as_of
    LOOP
        INSERT INTO bench.loop_ltv (user_id, signup_date, revenue_3m, revenue_6m, revenue_12m,
            lifetime_revenue, orders_3m, orders_6m, orders_12m, orders_lifetime, avg_order_value_3m,
            avg_order_value_6m, avg_order_value_12m, avg_order_value_lifetime, first_order_date,
            last_order_date, days_since_last_order, horizon_3m_complete, horizon_6m_complete,
            horizon_12m_complete, orders_before_signup, segment, as_of_date, calculated_at)
        SELECT u.user_id, u.signup, a.r3, a.r6, a.r12, a.rl, a.n3, a.n6, a.n12, a.nl,
               round(a.r3 / nullif(a.n3, 0), 2), round(a.r6 / nullif(a.n6, 0), 2),
               round(a.r12 / nullif(a.n12, 0), 2), round(a.rl / nullif(a.nl, 0), 2),
               a.first_d, a.last_d, as_of - a.last_d, u.e3 <= as_of, u.e6 <= as_of, u.e12 <= as_of, a.bs,
               CASE WHEN a.rl >= 1000 THEN 'VIP' WHEN a.rl >= 500 THEN 'High' WHEN a.rl >= 100 THEN 'Medium'
                    WHEN a.rl >= 50 THEN 'Low' ELSE 'New' END,
               as_of, now()
        FROM (
            SELECT coalesce(sum(o.amt) FILTER (WHERE o.d >= u.signup AND o.d <= u.e3), 0) AS r3,
                   count(*) FILTER (WHERE o.d >= u.signup AND o.d <= u.e3) AS n3,
                   coalesce(sum(o.amt) FILTER (WHERE o.d >= u.signup AND o.d <= u.e6), 0) AS r6,
                   count(*) FILTER (WHERE o.d >= u.signup AND o.d <= u.e6) AS n6,
                   coalesce(sum(o.amt) FILTER (WHERE o.d >= u.signup AND o.d <= u.e12), 0) AS r12,
                   count(*) FILTER (WHERE o.d >= u.signup AND o.d <= u.e12) AS n12,
                   coalesce(sum(o.amt), 0) AS rl, count(o.amt) AS nl,
                   min(o.d) AS first_d, max(o.d) AS last_d, count(*) FILTER (WHERE o.d < u.signup) AS bs
            FROM (SELECT (x.created_at AT TIME ZONE 'UTC')::date AS d, x.total_amount AS amt
                  FROM public.orders x
                  WHERE x.user_id = u.user_id AND x.status IN ('paid', 'shipped', 'completed')
                    AND x.total_amount >= 0) o
            WHERE o.d <= as_of
        ) a;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- Rows of one results table that the other lacks, both ways, comparing every column but
-- calculated_at (the time of the run). Zero and zero means identical contents.
CREATE FUNCTION bench.diff_count(a regclass, b regclass, only_users_of regclass DEFAULT NULL)
RETURNS TABLE (missing bigint, unexpected bigint)
LANGUAGE plpgsql AS $$
DECLARE
    cols text := 'user_id, signup_date, revenue_3m, revenue_6m, revenue_12m, lifetime_revenue, '
        'orders_3m, orders_6m, orders_12m, orders_lifetime, avg_order_value_3m, avg_order_value_6m, '
        'avg_order_value_12m, avg_order_value_lifetime, first_order_date, last_order_date, '
        'days_since_last_order, horizon_3m_complete, horizon_6m_complete, horizon_12m_complete, '
        'orders_before_signup, segment, as_of_date';
    filter text := CASE WHEN only_users_of IS NULL THEN ''
        ELSE format(' WHERE user_id IN (SELECT user_id FROM %s)', only_users_of) END;
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT (SELECT count(*) FROM (SELECT %1$s FROM %2$s%4$s EXCEPT ALL SELECT %1$s FROM %3$s%4$s) d),
                (SELECT count(*) FROM (SELECT %1$s FROM %3$s%4$s EXCEPT ALL SELECT %1$s FROM %2$s%4$s) d)',
        cols, a, b, filter);
END
$$;

-- Per-call latency of a statement, in milliseconds, measured inside the backend (no client
-- round trip, but with planning, as for any dynamic statement): p50, p99 and max over `calls`
-- executions. $1 is bound to a random existing user id for each call.
CREATE FUNCTION bench.latency(stmt text, calls integer)
RETURNS TABLE (p50_ms double precision, p99_ms double precision, max_ms double precision)
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    took double precision[] := '{}';
    t0 timestamptz;
BEGIN
    SELECT array_agg(user_id) INTO ids
    FROM (SELECT user_id FROM public.users ORDER BY random() LIMIT calls) s;
    FOR i IN 1..calls LOOP
        t0 := clock_timestamp();
        EXECUTE stmt USING ids[1 + (i - 1) % cardinality(ids)];
        took := took || 1000 * extract(epoch FROM clock_timestamp() - t0)::double precision;
    END LOOP;
    RETURN QUERY SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x),
                        percentile_cont(0.99) WITHIN GROUP (ORDER BY x), max(x)
                 FROM unnest(took) AS x;
END
$$;

-- RFM scores in one hand-written statement (window functions over a GROUP BY): the baseline for
-- calculate_all_rfm(), and the check that it scores every customer the same.
CREATE TABLE bench.hand_rfm (user_id bigint PRIMARY KEY, r_score int, f_score int, m_score int);
CREATE FUNCTION bench.hand_rfm_refresh(as_of date) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM bench.hand_rfm;
    INSERT INTO bench.hand_rfm
    WITH c AS (
        SELECT o.user_id, as_of - max((o.created_at AT TIME ZONE 'UTC')::date) AS rec, count(*) AS f,
               sum(o.total_amount) AS m
        FROM public.orders o JOIN public.users u USING (user_id)
        WHERE o.status IN ('paid', 'shipped', 'completed') AND o.total_amount >= 0
          AND (o.created_at AT TIME ZONE 'UTC')::date <= as_of AND (u.registered_at AT TIME ZONE 'UTC')::date <= as_of
        GROUP BY o.user_id
    )
    SELECT user_id, 1 + 5 * (rank() OVER (ORDER BY rec DESC) - 1) / count(*) OVER (),
           1 + 5 * (rank() OVER (ORDER BY f) - 1) / count(*) OVER (),
           1 + 5 * (rank() OVER (ORDER BY m) - 1) / count(*) OVER ()
    FROM c;
    RETURN (SELECT count(*) FROM bench.hand_rfm);
END
$$;
