-- SQL-language functions of cda_analytics, created after the Rust functions they call. Every one
-- pins its search_path and schema-qualifies what it touches.

-- Tables are regclass so that 'orders' or 'shop.orders' resolve in the caller's search_path, and a
-- missing table is an error naming it before anything runs. NULL keeps the current value.
CREATE FUNCTION @extschema@.configure_source(
    users_table          regclass DEFAULT NULL,
    user_id_column       text     DEFAULT NULL,
    registered_at_column text     DEFAULT NULL,
    orders_table         regclass DEFAULT NULL,
    order_user_id_column text     DEFAULT NULL,
    order_date_column    text     DEFAULT NULL,
    status_column        text     DEFAULT NULL,
    amount_column        text     DEFAULT NULL,
    successful_statuses  text[]   DEFAULT NULL,
    time_zone            text     DEFAULT NULL)
RETURNS TABLE (setting text, value text)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM @extschema@._configure_source(users_table::oid, user_id_column, registered_at_column,
        orders_table::oid, order_user_id_column, order_date_column, status_column, amount_column,
        successful_statuses, time_zone)
$$;

-- Where the order items and products are; regclass arguments as in configure_source. An empty
-- non_product_column removes it.
CREATE FUNCTION @extschema@.configure_items(
    order_items_table      regclass DEFAULT NULL,
    item_order_id_column   text     DEFAULT NULL,
    item_product_id_column text     DEFAULT NULL,
    quantity_column        text     DEFAULT NULL,
    unit_price_column      text     DEFAULT NULL,
    products_table         regclass DEFAULT NULL,
    product_id_column      text     DEFAULT NULL,
    category_column        text     DEFAULT NULL,
    non_product_column     text     DEFAULT NULL,
    order_id_column        text     DEFAULT NULL)
RETURNS TABLE (setting text, value text)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM @extschema@._configure_items(order_items_table::oid, item_order_id_column,
        item_product_id_column, quantity_column, unit_price_column, products_table::oid,
        product_id_column, category_column, non_product_column, order_id_column)
$$;

-- What a price change dp (-0.15 for -15%) does under an elasticity beta in the log-log model,
-- exactly: units (1 + dp)^beta - 1, revenue (1 + dp)^(1 + beta) - 1, and the units' range over
-- the interval [ci_low, ci_high]. Usable only when the estimate's reliability is 'ok' (a
-- positive elasticity never is).
CREATE FUNCTION @extschema@.elasticity_scenario(beta float8, ci_low float8, ci_high float8, dp float8,
                                                reliability text DEFAULT 'ok')
RETURNS TABLE (dq float8, dq_low float8, dq_high float8, drevenue float8, usable boolean, reason text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN ok THEN power(1 + dp, beta) - 1 END,
           CASE WHEN ok THEN least(power(1 + dp, ci_low), power(1 + dp, ci_high)) - 1 END,
           CASE WHEN ok THEN greatest(power(1 + dp, ci_low), power(1 + dp, ci_high)) - 1 END,
           CASE WHEN ok THEN power(1 + dp, 1 + beta) - 1 END,
           ok AND usable_estimate,
           CASE WHEN NOT ok THEN 'dp must be above -1, and beta, ci_low and ci_high finite numbers'
                WHEN reliability IS DISTINCT FROM 'ok' THEN 'the estimate is not reliable: ' || coalesce(reliability, 'unknown')
                WHEN beta >= 0 THEN 'a non-negative elasticity is not a demand response'
                ELSE 'ok' END
    FROM (SELECT dp > -1 AND beta IS NOT NULL AND ci_low IS NOT NULL AND ci_high IS NOT NULL
                 AND beta NOT IN ('NaN', 'Infinity', '-Infinity')
                 AND ci_low NOT IN ('NaN', 'Infinity', '-Infinity')
                 AND ci_high NOT IN ('NaN', 'Infinity', '-Infinity') AS ok,
                 reliability IS NOT DISTINCT FROM 'ok' AND beta < 0 AS usable_estimate) s
$$;

-- One user's LTV row, computed from the source tables now, written nowhere.
CREATE FUNCTION @extschema@.calculate_user_ltv(user_id bigint, as_of date DEFAULT NULL)
RETURNS SETOF @extschema@.ml_user_ltv
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- PL/pgSQL rather than SQL: a SQL function with a SET clause is parsed and planned again on
    -- every call, a fifth of a call's time; PL/pgSQL keeps the plan.
    RETURN QUERY
    SELECT r.user_id, DATE '2000-01-01' + r.signup_day,
           r.revenue_minor[1] * r.minor_unit, r.revenue_minor[2] * r.minor_unit,
           r.revenue_minor[3] * r.minor_unit, r.revenue_minor[4] * r.minor_unit,
           r.orders[1], r.orders[2], r.orders[3], r.orders[4],
           r.avg_order_value_minor[1] * r.minor_unit, r.avg_order_value_minor[2] * r.minor_unit,
           r.avg_order_value_minor[3] * r.minor_unit, r.avg_order_value_minor[4] * r.minor_unit,
           DATE '2000-01-01' + r.first_order_day, DATE '2000-01-01' + r.last_order_day,
           r.days_since_last_order,
           r.horizon_complete[1], r.horizon_complete[2], r.horizon_complete[3],
           r.orders_before_signup, r.segment, DATE '2000-01-01' + r.as_of_day, now()
    FROM @extschema@._ltv_compute_user($1, $2) r;
END
$$;

-- The latest calculate_all_ltv() run: users, as-of date, when and how long, what was left out.
CREATE VIEW @extschema@.ltv_last_run AS
    SELECT * FROM @extschema@.ml_ltv_runs ORDER BY run_id DESC LIMIT 1;

CREATE FUNCTION @extschema@._ltv_require_run()
RETURNS bigint
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last_run bigint;
BEGIN
    SELECT s.run_id INTO last_run FROM @extschema@.ml_ltv_summary s LIMIT 1;
    IF last_run IS NULL THEN
        RAISE EXCEPTION 'no LTV results yet'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run SELECT calculate_all_ltv(); first.';
    END IF;
    RETURN last_run;
END
$$;

-- Average, median, 95th percentile, buyers and measured users per horizon. A horizon's figures
-- cover the users whose horizon had fully elapsed at the as-of date; lifetime covers all users.
CREATE FUNCTION @extschema@.get_ltv_summary()
RETURNS TABLE (metric_name text, value_3m numeric, value_6m numeric, value_12m numeric, value_lifetime numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH run AS (
        SELECT r.amount_scale AS scale FROM @extschema@.ml_ltv_runs r
        WHERE r.run_id = @extschema@._ltv_require_run()
    ), metric AS (
        SELECT m.ord, m.name, s.horizon, m.value
        FROM @extschema@.ml_ltv_summary s CROSS JOIN run
        CROSS JOIN LATERAL (VALUES
            (1, 'Average LTV', round(s.revenue_sum / nullif(s.users_measured, 0), run.scale)),
            (2, 'Median LTV', round(s.median::numeric, run.scale)),
            (3, '95th Percentile LTV', round(s.p95::numeric, run.scale)),
            (4, 'Users with Orders', s.users_with_orders::numeric),
            (5, 'Users Measured', s.users_measured::numeric)
        ) AS m(ord, name, value)
    )
    SELECT name,
           max(value) FILTER (WHERE horizon = '3m'),
           max(value) FILTER (WHERE horizon = '6m'),
           max(value) FILTER (WHERE horizon = '12m'),
           max(value) FILTER (WHERE horizon = 'lifetime')
    FROM metric GROUP BY ord, name ORDER BY ord
$$;

-- Equal-width bins over the values above 0 of one metric, computed from ml_user_ltv. Horizon
-- metrics cover users whose horizon had elapsed. The maximum falls in the last bin; when every
-- value is equal there is one bin. Percentages are of the users counted, rounded to 2 places.
-- The refresh stores the same histograms for common bin counts (core/src/ltv/distribution.rs).
CREATE FUNCTION @extschema@._ltv_distribution_live(metric text, bins integer)
RETURNS TABLE (bin integer, range_min numeric, range_max numeric, users bigint, percentage numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    mature text;
BEGIN
    mature := CASE metric
        WHEN 'revenue_3m' THEN 'horizon_3m_complete'
        WHEN 'revenue_6m' THEN 'horizon_6m_complete'
        WHEN 'revenue_12m' THEN 'horizon_12m_complete'
        WHEN 'lifetime_revenue' THEN 'true'
    END;
    IF mature IS NULL THEN
        RAISE EXCEPTION 'unknown LTV metric "%"', metric
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use one of: revenue_3m, revenue_6m, revenue_12m, lifetime_revenue.';
    END IF;
    IF bins IS NULL OR bins < 1 OR bins > 1000 THEN
        RAISE EXCEPTION 'bins must be between 1 and 1000, got %', coalesce(bins::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@._ltv_require_run();
    -- metric and mature come from the whitelist above, never from the caller's text.
    RETURN QUERY EXECUTE format($q$
        WITH v AS (
            SELECT %1$I AS x FROM @extschema@.ml_user_ltv WHERE %1$I > 0 AND %2$s
        ), b AS (
            SELECT min(x) AS lo, max(x) AS hi, count(*) AS n FROM v
        ), w AS (
            SELECT lo, hi, n, CASE WHEN hi = lo THEN 1 ELSE $1 END AS k FROM b WHERE n > 0
        ), assigned AS (
            SELECT CASE WHEN w.k = 1 THEN 1
                        ELSE least(floor((v.x - w.lo) * w.k / (w.hi - w.lo))::integer + 1, w.k) END AS bin
            FROM v CROSS JOIN w
        ), counted AS (
            SELECT a.bin, count(*) AS users FROM assigned a GROUP BY a.bin
        )
        SELECT g.i,
               round(w.lo + (w.hi - w.lo) * (g.i - 1) / w.k, 2),
               round(CASE WHEN g.i = w.k THEN w.hi ELSE w.lo + (w.hi - w.lo) * g.i / w.k END, 2),
               coalesce(c.users, 0),
               round(100.0 * coalesce(c.users, 0) / w.n, 2)
        FROM w CROSS JOIN generate_series(1, w.k) AS g(i)
        LEFT JOIN counted c ON c.bin = g.i
        ORDER BY g.i
    $q$, metric, mature) USING bins;
END
$$;

-- The histogram of one metric: stored by the latest run for the common bin counts, else computed.
CREATE FUNCTION @extschema@.ltv_distribution(metric text DEFAULT 'revenue_6m', bins integer DEFAULT 10)
RETURNS TABLE (bin integer, range_min numeric, range_max numeric, users bigint, percentage numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last_run bigint;
BEGIN
    IF ltv_distribution.metric IN ('revenue_3m', 'revenue_6m', 'revenue_12m', 'lifetime_revenue')
       AND ltv_distribution.bins BETWEEN 1 AND 1000 THEN
        last_run := @extschema@._ltv_require_run();
        IF EXISTS (SELECT 1 FROM @extschema@.ml_ltv_runs r
                   WHERE r.run_id = last_run AND ltv_distribution.bins = ANY (r.distribution_bins)) THEN
            RETURN QUERY
                SELECT d.bin, d.range_min, d.range_max, d.users, d.percentage
                FROM @extschema@.ml_ltv_distribution d
                WHERE d.metric = ltv_distribution.metric AND d.bins = ltv_distribution.bins
                ORDER BY d.bin;
            RETURN;
        END IF;
    END IF;
    -- Other bin counts, and the errors for bad arguments.
    RETURN QUERY SELECT * FROM @extschema@._ltv_distribution_live(metric, bins);
END
$$;

-- Users, share and revenue per value segment (lifetime revenue), with the thresholds of the run
-- that assigned them; every segment is listed, empty ones with 0.
CREATE FUNCTION @extschema@.ltv_segments()
RETURNS TABLE (segment text, min_lifetime_revenue numeric, users bigint, share_pct numeric,
               revenue numeric, revenue_share_pct numeric)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH run AS (
        SELECT * FROM @extschema@.ml_ltv_runs WHERE run_id = @extschema@._ltv_require_run()
    ), seg AS (
        SELECT s.ord, s.name, s.min_revenue FROM run CROSS JOIN LATERAL (VALUES
            (1, 'VIP', run.segment_vip), (2, 'High', run.segment_high),
            (3, 'Medium', run.segment_medium), (4, 'Low', run.segment_low), (5, 'New', NULL::numeric)
        ) AS s(ord, name, min_revenue)
    ), totals AS (
        SELECT count(*) AS n, sum(lifetime_revenue) AS revenue FROM @extschema@.ml_user_ltv
    ), per AS (
        SELECT l.segment, count(*) AS users, sum(l.lifetime_revenue) AS revenue
        FROM @extschema@.ml_user_ltv l GROUP BY l.segment
    )
    SELECT seg.name, seg.min_revenue, coalesce(per.users, 0),
           round(100.0 * coalesce(per.users, 0) / nullif(totals.n, 0), 2),
           coalesce(per.revenue, 0),
           round(100.0 * coalesce(per.revenue, 0) / nullif(totals.revenue, 0), 2)
    FROM seg CROSS JOIN totals LEFT JOIN per ON per.segment = seg.name
    ORDER BY seg.ord
$$;

-- The original platform's three insight cards, with its defects fixed: the margin on CAC is
-- configurable (configure_ltv(cac_margin => ...)), and growth compares the same users (those
-- whose 12-month horizon has elapsed) at 6 and 12 months, not two different cohorts.
-- The margin of the recommended maximum CAC, checked: a positive finite number.
CREATE FUNCTION @extschema@._ltv_margin(m numeric)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF m IS NULL OR m = 'NaN' OR m = 'Infinity' OR m <= 0 THEN
        RAISE EXCEPTION 'cac_margin must be a positive number, got %', coalesce(m::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The recommended maximum CAC is the average 6-month LTV times this margin.';
    END IF;
    RETURN m;
END
$$;

CREATE FUNCTION @extschema@.get_ltv_insights(cac_margin numeric DEFAULT NULL)
RETURNS TABLE (recommended_max_cac numeric, avg_ltv_6m numeric, cac_margin numeric,
               ltv_growth_12m_over_6m numeric, buyers_pct numeric, users bigint, buyers bigint)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH run AS (
        SELECT * FROM @extschema@.ml_ltv_runs WHERE run_id = @extschema@._ltv_require_run()
    ), margin AS (
        SELECT @extschema@._ltv_margin(coalesce($1, (SELECT c.value::numeric FROM @extschema@.cda_configuration() c
                                                     WHERE c.setting = 'cac_margin'))) AS m
    ), h6 AS (
        SELECT round(s.revenue_sum / nullif(s.users_measured, 0), run.amount_scale) AS avg6
        FROM @extschema@.ml_ltv_summary s CROSS JOIN run WHERE s.horizon = '6m'
    ), life AS (
        SELECT s.users_measured, s.users_with_orders FROM @extschema@.ml_ltv_summary s WHERE s.horizon = 'lifetime'
    )
    SELECT round(h6.avg6 * margin.m, run.amount_scale), h6.avg6, margin.m,
           round(run.cohort_12m_revenue_12m / nullif(run.cohort_12m_revenue_6m, 0), 3),
           round(100.0 * life.users_with_orders / nullif(life.users_measured, 0), 2),
           life.users_measured, life.users_with_orders
    FROM run, margin, h6, life
$$;

-- Per segment of the latest calculate_all_rfm() run: users, share of all users, average R, F and
-- M, revenue and share of revenue. 'No Orders' is its own row; rows in map order.
CREATE FUNCTION @extschema@.rfm_segment_summary()
RETURNS TABLE (segment text, users bigint, share numeric, avg_recency_days numeric,
               avg_frequency numeric, avg_monetary numeric, revenue numeric, revenue_share numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM @extschema@.ml_rfm_runs) THEN
        RAISE EXCEPTION 'no RFM results yet'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run SELECT calculate_all_rfm(); first.';
    END IF;
    RETURN QUERY
    WITH per AS (
        SELECT r.segment, count(*) AS users, avg(r.recency_days) AS rec, avg(r.frequency) AS freq,
               avg(r.monetary) AS mon, sum(r.revenue) AS rev
        FROM @extschema@.ml_user_rfm r GROUP BY r.segment
    ), ordering AS (
        SELECT rr.segment, min(rr.priority) AS priority FROM @extschema@.rfm_segment_rules() rr GROUP BY rr.segment
    )
    SELECT p.segment, p.users,
           round(100.0 * p.users / sum(p.users) OVER (), 2),
           round(p.rec, 1), round(p.freq, 2), round(p.mon, 2), p.rev,
           round(100.0 * p.rev / NULLIF(sum(p.rev) OVER (), 0), 2)
    FROM per p LEFT JOIN ordering o ON o.segment = p.segment
    ORDER BY o.priority NULLS LAST, p.segment;
END
$$;

CREATE FUNCTION @extschema@._require_dates(from_date date, to_date date)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF from_date IS NULL OR to_date IS NULL THEN
        RAISE EXCEPTION 'from_date and to_date must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_date < from_date THEN
        RAISE EXCEPTION 'to_date % is before from_date %', to_date, from_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- The dates from_date + i * step up to to_date: each counted from the start, so monthly steps
-- from Jan 31 give Feb 28, Mar 31, Apr 30 rather than drifting to the 28th. A step under a day
-- would repeat dates (and break the bound on i).
CREATE FUNCTION @extschema@._date_steps(from_date date, to_date date, step interval)
RETURNS TABLE (day date)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._require_dates(from_date, to_date);
    IF step IS NULL OR step < interval '1 day' THEN
        RAISE EXCEPTION 'step must be at least 1 day, got %', step USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Every date is a whole scoring of the customers: the series is bounded, as bins are.
    IF (to_date - from_date) / greatest(1, floor(extract(epoch FROM step) / 86400)::int) >= 1000 THEN
        RAISE EXCEPTION 'step % gives more than 1000 dates from % to %', step, from_date, to_date
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Use a longer step or a shorter range: each date scores every customer again.';
    END IF;
    RETURN QUERY
    SELECT (from_date + i * step)::date
    FROM generate_series(0, (to_date - from_date)
                            / greatest(1, floor(extract(epoch FROM step) / 86400)::int)) i
    WHERE from_date + i * step <= to_date;
END
$$;

-- How users moved between RFM segments from one date to another, each date scored on its own
-- (quintiles of that day's customers). '(not registered)' stands for users who had not signed up
-- yet on a date.
CREATE FUNCTION @extschema@.rfm_segment_migration(from_date date, to_date date, monetary text DEFAULT 'total')
RETURNS TABLE (from_segment text, to_segment text, users bigint)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._require_dates(from_date, to_date);
    RETURN QUERY
    SELECT coalesce(a.segment, '(not registered)'), coalesce(b.segment, '(not registered)'), count(*)
    FROM @extschema@.rfm_segment(from_date, rfm_segment_migration.monetary) a
    FULL JOIN @extschema@.rfm_segment(to_date, rfm_segment_migration.monetary) b ON a.user_id = b.user_id
    GROUP BY 1, 2 ORDER BY 1, 2;
END
$$;

-- Users per RFM segment on each date from from_date to to_date every step: users per date, not
-- user-days. Each date costs one read of the orders.
CREATE FUNCTION @extschema@.rfm_segment_sizes(from_date date, to_date date,
                                              step interval DEFAULT '1 day', monetary text DEFAULT 'total')
RETURNS TABLE (snapshot_date date, segment text, users bigint, share numeric)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT d.day, s.segment, count(*), round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY d.day), 2)
    FROM @extschema@._date_steps(from_date, to_date, step) d
    CROSS JOIN LATERAL @extschema@.rfm_segment(d.day, rfm_segment_sizes.monetary) s
    GROUP BY d.day, s.segment ORDER BY d.day, s.segment;
END
$$;

-- How users moved between the clusters of a stored model from one date to another: both
-- snapshots are assigned to the same stored centroids, so the matrix means something.
-- '(no orders)' stands for users without a successful order by a date.
CREATE FUNCTION @extschema@.cluster_migration(model_name text, from_date date, to_date date)
RETURNS TABLE (from_cluster text, to_cluster text, users bigint)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._require_dates(from_date, to_date);
    RETURN QUERY
    SELECT coalesce(a.cluster_name, '(no orders)'), coalesce(b.cluster_name, '(no orders)'), count(*)
    FROM @extschema@.kmeans_assign(cluster_migration.model_name, from_date) a
    FULL JOIN @extschema@.kmeans_assign(cluster_migration.model_name, to_date) b ON a.user_id = b.user_id
    GROUP BY 1, 2 ORDER BY 1, 2;
END
$$;

-- Users per cluster of a stored model on each date from from_date to to_date every step.
CREATE FUNCTION @extschema@.cluster_sizes(model_name text, from_date date, to_date date,
                                          step interval DEFAULT '1 day')
RETURNS TABLE (snapshot_date date, cluster integer, cluster_name text, users bigint, share numeric)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT d.day, a.cluster, a.cluster_name, count(*),
           round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY d.day), 2)
    FROM @extschema@._date_steps(from_date, to_date, step) d
    CROSS JOIN LATERAL @extschema@.kmeans_assign(cluster_sizes.model_name, d.day) a
    GROUP BY d.day, a.cluster, a.cluster_name ORDER BY d.day, a.cluster;
END
$$;

-- The anomalies of the latest judged week in ml_user_anomalies_weekly, highest score first.
CREATE FUNCTION @extschema@.latest_anomalies(min_score float8 DEFAULT 1, max_rows integer DEFAULT 100)
RETURNS TABLE (user_id bigint, week_start date, orders integer, spend float8, anomaly_score float8,
               triggers text[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.user_id, a.week_start, a.orders, a.spend, round(a.anomaly_score::numeric, 4)::float8, a.triggers
    FROM @extschema@.ml_user_anomalies_weekly a
    WHERE a.is_anomaly AND a.anomaly_score >= min_score
      AND a.week_start = (SELECT max(b.week_start) FROM @extschema@.ml_user_anomalies_weekly b)
    ORDER BY a.anomaly_score DESC, a.user_id
    LIMIT max_rows;
$$;

-- Per judged week: users judged, anomalies, users flagged for short history, score statistics,
-- and how often each trigger fired.
CREATE FUNCTION @extschema@.anomaly_summary()
RETURNS TABLE (week_start date, users_judged bigint, anomalies bigint, insufficient_history bigint,
               mean_score float8, max_score float8, top_triggers text[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.week_start, count(*), count(*) FILTER (WHERE a.is_anomaly),
           count(*) FILTER (WHERE a.insufficient_history),
           round((avg(a.anomaly_score) FILTER (WHERE a.is_anomaly))::numeric, 4)::float8,
           round((max(a.anomaly_score) FILTER (WHERE a.is_anomaly))::numeric, 4)::float8,
           ARRAY(SELECT t.trigger || ': ' || count(*)
                 FROM @extschema@.ml_user_anomalies_weekly b, unnest(b.triggers) AS t(trigger)
                 WHERE b.week_start = a.week_start AND b.is_anomaly
                 GROUP BY t.trigger ORDER BY count(*) DESC, t.trigger LIMIT 5)
    FROM @extschema@.ml_user_anomalies_weekly a
    GROUP BY a.week_start ORDER BY a.week_start;
$$;

-- The customers most at risk in the latest calculate_all_churn(), every scored customer
-- considered: probability at least `threshold`, highest first. By default only the active ones
-- (eligible: still buying within the model's active window, who can still be kept); customers
-- who lapsed long ago are already gone by that definition, and `include_lapsed` adds them.
CREATE FUNCTION @extschema@.churn_high_risk(threshold float8 DEFAULT 0.6, max_rows integer DEFAULT 20,
                                            include_lapsed boolean DEFAULT false)
RETURNS TABLE (user_id bigint, probability float8, risk_band text, eligible boolean, top_reasons text[],
               model_name text, model_version integer, as_of_date date)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF threshold IS NULL OR NOT (threshold BETWEEN 0 AND 1) THEN
        RAISE EXCEPTION 'threshold must be between 0 and 1, got %', threshold
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be at least 1, got %', max_rows
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM @extschema@.ml_churn_scores) THEN
        RAISE EXCEPTION 'ml_churn_scores is empty'
            USING ERRCODE = 'no_data_found',
                  HINT = 'Train a model and score: SELECT * FROM churn_train(); SELECT * FROM calculate_all_churn();';
    END IF;
    RETURN QUERY
        SELECT s.user_id, round(s.probability::numeric, 4)::float8, s.risk_band, s.eligible, s.top_reasons,
               s.model_name, s.model_version, s.as_of_date
        FROM @extschema@.ml_churn_scores s
        WHERE s.probability >= threshold AND (s.eligible OR include_lapsed)
        ORDER BY s.probability DESC, s.user_id
        LIMIT max_rows;
END;
$$;

-- Customers per churn risk band in the latest calculate_all_churn().
CREATE FUNCTION @extschema@.churn_summary()
RETURNS TABLE (risk_band text, customers bigint, share float8, mean_probability float8, eligible bigint)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.risk_band, count(*), round(count(*)::numeric / sum(count(*)) OVER (), 4)::float8,
           round(avg(s.probability)::numeric, 4)::float8, count(*) FILTER (WHERE s.eligible)
    FROM @extschema@.ml_churn_scores s
    GROUP BY s.risk_band
    ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low'], s.risk_band);
$$;

-- Who may do what. PostgreSQL grants EXECUTE on every new function to PUBLIC; the extension takes
-- that back (the DO block at the end of this file), so that nobody but the owner (and superusers)
-- can refresh, train, configure or call the internal functions with hand-made arguments until
-- granted. This function is the one place that grants: an analyst may call every function that
-- only reads (the non-volatile ones) and SELECT every results table and view; an operator may also
-- refresh, fit, train and configure (the volatile functions) and write the results tables; 'none'
-- takes back what either granted. The component functions of the internal aggregates are granted
-- to nobody: PostgreSQL checks them against the aggregate's owner, not the caller.
CREATE FUNCTION @extschema@.grant_analytics_access(role_name regrole, access text DEFAULT 'analyst')
RETURNS TABLE (object_type text, object_name text, privileges text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grantee text;
    ext oid;
    r record;
    privs text;
BEGIN
    IF role_name IS NULL THEN
        RAISE EXCEPTION 'role_name must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name an existing role, e.g. grant_analytics_access(''analyst'', ''analyst'').';
    END IF;
    IF access IS NULL OR access NOT IN ('analyst', 'operator', 'none') THEN
        RAISE EXCEPTION 'unknown access level %', coalesce(quote_literal(access), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''analyst'' (read results), ''operator'' (also refresh, fit, train and configure) or ''none''.';
    END IF;
    grantee := role_name::text;  -- regrole's text is already quoted where needed
    SELECT e.oid INTO ext FROM pg_catalog.pg_extension e WHERE e.extname = 'cda_analytics';

    object_type := 'schema';
    object_name := '@extschema@';
    -- USAGE on the schema only where the role lacks it (the public schema usually grants it to
    -- PUBLIC); 'none' takes back a direct grant, which would otherwise keep the role from being
    -- dropped.
    IF access = 'none' THEN
        EXECUTE format('REVOKE USAGE ON SCHEMA @extschema@ FROM %s', grantee);
    ELSIF NOT has_schema_privilege(role_name, '@extschema@'::regnamespace, 'USAGE') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA @extschema@ TO %s', grantee);
        privileges := 'USAGE';
        RETURN NEXT;
    END IF;

    FOR r IN
        SELECT p.oid::pg_catalog.regprocedure::text AS name, p.provolatile
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_proc p ON p.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.refobjid = ext AND d.deptype = 'e'
          AND NOT EXISTS (SELECT FROM pg_catalog.pg_aggregate a
                          WHERE p.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn,
                                          a.aggserialfn, a.aggdeserialfn))
        ORDER BY 1
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %s', r.name, grantee);
        IF access = 'operator' OR (access = 'analyst' AND r.provolatile <> 'v') THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', r.name, grantee);
            object_type := 'function';
            object_name := r.name;
            privileges := 'EXECUTE';
            RETURN NEXT;
        END IF;
    END LOOP;

    FOR r IN
        SELECT c.oid::pg_catalog.regclass::text AS name, c.relkind
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_class c ON c.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = ext AND d.deptype = 'e'
          AND c.relkind IN ('r', 'v', 'S')
        ORDER BY 1
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM %s', r.name, grantee);
        privs := CASE
            WHEN access = 'none' THEN NULL
            WHEN r.relkind = 'S' THEN CASE access WHEN 'operator' THEN 'USAGE, SELECT' END
            WHEN r.relkind = 'r' AND access = 'operator' THEN 'SELECT, INSERT, UPDATE, DELETE'
            ELSE 'SELECT' END;
        IF privs IS NOT NULL THEN
            EXECUTE format('GRANT %s ON %s%s TO %s', privs,
                           CASE WHEN r.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END, r.name, grantee);
            object_type := CASE r.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' ELSE 'sequence' END;
            object_name := r.name;
            privileges := privs;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;

-- Last, once every function exists: no function of the extension is executable by PUBLIC.
DO $$
DECLARE
    f text;
BEGIN
    FOR f IN
        SELECT d.objid::pg_catalog.regprocedure::text
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'cda_analytics'
        WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.deptype = 'e'
    LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.grant_analytics_access(regrole, text) IS
'Grants a role access to the extension: ''analyst'' (EXECUTE on the read-only functions, SELECT on results), ''operator'' (also refresh, fit, train and configure) or ''none'' (revoke). Returns the grants made.';
