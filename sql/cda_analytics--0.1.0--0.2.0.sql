-- cda_analytics 0.1.0 to 0.2.0, run by ALTER EXTENSION cda_analytics UPDATE (in one transaction:
-- if any statement fails, the database stays at 0.1.0 as it was). Hand-kept, and never edited
-- once released: a database upgraded by it must end with exactly the catalog of a fresh 0.2.0
-- install, which pg_test/upgrade/upgrade.sh checks, along with the results, configuration and
-- models that must survive. What changes (CHANGELOG.md):
--   - the recommenders' neighbours move into two arrays of ml_recommender_products, and
--     ml_recommender_neighbors becomes a view with the columns of the table it replaces; the
--     stored neighbours are moved, so trained models keep working;
--   - new: the BI views customer_latest and run_history_daily; the notification outbox
--     (cda_notifications, cda_notification_deliveries, cda_digest_high_risk) and queue_digest();
--     schedule_analytics_jobs() and unschedule_analytics_jobs(); cda_analytics_version(); the
--     items read's parallel aggregate _order_lines;
--   - a COMMENT on every object;
--   - the roles that grant_analytics_access() gave access keep it, to the new objects too.
-- No C function of 0.1.0 is removed, so the 0.1.0 catalog loads with the 0.2.0 library until the
-- update runs.
\echo Use "ALTER EXTENSION cda_analytics UPDATE TO '0.2.0'" to load this file. \quit

-- Recommenders: each product's neighbours as two arrays, best first, moved from the table of one
-- row per neighbour (products without neighbours get empty arrays).
ALTER TABLE @extschema@.ml_recommender_products
    ADD COLUMN neighbor_ids bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN weights      float8[] NOT NULL DEFAULT '{}';
UPDATE @extschema@.ml_recommender_products p
SET neighbor_ids = n.neighbor_ids, weights = n.weights
FROM (SELECT model_name, product_id,
             pg_catalog.array_agg(neighbor_id ORDER BY rank) AS neighbor_ids,
             pg_catalog.array_agg(weight ORDER BY rank) AS weights
      FROM @extschema@.ml_recommender_neighbors
      GROUP BY model_name, product_id) n
WHERE n.model_name = p.model_name AND n.product_id = p.product_id;
ALTER TABLE @extschema@.ml_recommender_products
    ALTER COLUMN neighbor_ids DROP DEFAULT,
    ALTER COLUMN weights DROP DEFAULT,
    ADD CHECK (pg_catalog.cardinality(neighbor_ids) = pg_catalog.cardinality(weights));
-- Leaving the extension first takes the table off the list pg_dump dumps (extconfig); a table
-- dropped while on it would leave its oid there, and pg_dump would fail.
ALTER EXTENSION cda_analytics DROP TABLE @extschema@.ml_recommender_neighbors;
DROP TABLE @extschema@.ml_recommender_neighbors;

-- The stored neighbours one per row: item-kNN's similarities, or the largest weights of EASE's
-- row of its item matrix, ranked from 1.
CREATE VIEW @extschema@.ml_recommender_neighbors AS
SELECT p.model_name, p.product_id, n.rank::integer AS rank, n.neighbor_id, n.weight
FROM @extschema@.ml_recommender_products p,
     ROWS FROM (pg_catalog.unnest(p.neighbor_ids), pg_catalog.unnest(p.weights)) WITH ORDINALITY AS n(neighbor_id, weight, rank);

-- For BI tools: one row per user with the latest result of every capability, plain typed
-- columns and no arrays, so that Metabase, Grafana or a spreadsheet can filter and chart it
-- without knowing the tables. Every user of the latest LTV refresh (the one refresh that covers
-- every user); a capability that has not run gives NULLs.
CREATE VIEW @extschema@.customer_latest AS
SELECT l.user_id, l.signup_date, l.lifetime_revenue, l.revenue_12m, l.orders_lifetime,
       l.avg_order_value_lifetime, l.first_order_date, l.last_order_date, l.days_since_last_order,
       l.segment AS value_segment, l.as_of_date AS ltv_as_of,
       r.segment AS rfm_segment, r.r_score, r.f_score, r.m_score, r.as_of_date AS rfm_as_of,
       c.cluster_name, c.model_name AS cluster_model, c.as_of_date AS cluster_as_of,
       v.clv, v.probability_alive, v.expected_purchases, v.as_of_date AS clv_as_of,
       ch.probability AS churn_probability, ch.risk_band AS churn_risk_band, ch.as_of_date AS churn_as_of,
       p.probability AS purchase_probability, p.band AS purchase_band,
       coalesce(a.anomalous_weeks, 0)::integer AS anomalous_weeks, a.last_anomalous_week
FROM @extschema@.ml_user_ltv l
LEFT JOIN @extschema@.ml_user_rfm r ON r.user_id = l.user_id
LEFT JOIN @extschema@.ml_user_clusters c ON c.user_id = l.user_id
LEFT JOIN @extschema@.ml_user_clv v ON v.user_id = l.user_id
LEFT JOIN @extschema@.ml_churn_scores ch ON ch.user_id = l.user_id
LEFT JOIN @extschema@.ml_purchase_scores p ON p.user_id = l.user_id
LEFT JOIN (SELECT w.user_id, count(*) AS anomalous_weeks, max(w.week_start) AS last_anomalous_week
           FROM @extschema@.ml_user_anomalies_weekly w WHERE w.is_anomaly GROUP BY w.user_id) a
       ON a.user_id = l.user_id;

-- For time-series panels: per day, the LTV and RFM refreshes that finished that day (in the
-- session's time zone), with what the last of each read and how long it took.
CREATE VIEW @extschema@.run_history_daily AS
WITH ltv AS (
    SELECT DISTINCT ON (r.finished_at::date) r.finished_at::date AS day,
           count(*) OVER (PARTITION BY r.finished_at::date) AS runs,
           r.duration_ms, r.users, r.orders_counted,
           r.orders_read - r.orders_counted AS orders_left_out, r.as_of_date
    FROM @extschema@.ml_ltv_runs r
    ORDER BY r.finished_at::date, r.finished_at DESC
), rfm AS (
    SELECT DISTINCT ON (r.finished_at::date) r.finished_at::date AS day,
           count(*) OVER (PARTITION BY r.finished_at::date) AS runs,
           r.duration_ms, r.customers_scored, r.as_of_date
    FROM @extschema@.ml_rfm_runs r
    ORDER BY r.finished_at::date, r.finished_at DESC
)
SELECT coalesce(l.day, f.day) AS day,
       coalesce(l.runs, 0)::integer AS ltv_runs, l.duration_ms AS ltv_duration_ms, l.users AS ltv_users,
       l.orders_counted AS ltv_orders_counted, l.orders_left_out AS ltv_orders_left_out,
       l.as_of_date AS ltv_as_of,
       coalesce(f.runs, 0)::integer AS rfm_runs, f.duration_ms AS rfm_duration_ms,
       f.customers_scored AS rfm_customers_scored, f.as_of_date AS rfm_as_of
FROM ltv l FULL JOIN rfm f ON f.day = l.day;

-- Notifications: an outbox that queue_digest() (a pg_cron job after the nightly refreshes)
-- fills, and the HTTP server's notifier sends (Telegram). A message is sent to each recipient at
-- most once: the sender records the delivery only after the provider accepted it, in one
-- transaction with nothing else, so a crash between the two resends rather than loses it.
CREATE TABLE @extschema@.cda_notifications (
    notification_id bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('digest')),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- Plain text, at most 4,096 characters (Telegram's limit for one message).
    body            text        NOT NULL CHECK (pg_catalog.length(body) BETWEEN 1 AND 4096),
    -- What the digest reported, so that the next one reports only what is new: the LTV run, the
    -- latest anomalous week, the last pg_cron run (cron.job_run_details.runid).
    last_ltv_run_id  bigint,
    last_anomaly_week date,
    last_cron_run_id bigint
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cda_notifications', '');

CREATE TABLE @extschema@.cda_notification_deliveries (
    notification_id bigint      NOT NULL REFERENCES @extschema@.cda_notifications ON DELETE CASCADE,
    channel         text        NOT NULL CHECK (channel IN ('telegram')),
    recipient       text        NOT NULL,
    sent_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    provider_message_id text,
    PRIMARY KEY (notification_id, channel, recipient)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cda_notification_deliveries', '');

-- The customers at high churn risk when the last digest was made, so that the next reports only
-- the ones newly at risk.
CREATE TABLE @extschema@.cda_digest_high_risk (
    user_id bigint PRIMARY KEY
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cda_digest_high_risk', '');

-- _order_lines(user_id, day, order_id, product_id, quantity, unit_price, problem): every line of
-- the counted orders, the others counted by problem; parallel-capable (src/read/items/aggregate.rs).
CREATE FUNCTION @extschema@._order_lines_sfunc(internal, bigint, integer, bigint, bigint, double precision, double precision, integer)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_lines_sfunc';
CREATE FUNCTION @extschema@._order_lines_combine(internal, internal)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_lines_combine';
CREATE FUNCTION @extschema@._order_lines_serial(internal)
RETURNS bytea LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_lines_serial';
CREATE FUNCTION @extschema@._order_lines_deserial(bytea, internal)
RETURNS internal LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_lines_deserial';
-- Hands the lines over in memory, as _order_events_final does the events.
CREATE FUNCTION @extschema@._order_lines_final(internal)
RETURNS bytea LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_lines_final';
CREATE AGGREGATE @extschema@._order_lines(bigint, integer, bigint, bigint, double precision, double precision, integer) (
    SFUNC = @extschema@._order_lines_sfunc, STYPE = internal,
    COMBINEFUNC = @extschema@._order_lines_combine,
    SERIALFUNC = @extschema@._order_lines_serial, DESERIALFUNC = @extschema@._order_lines_deserial,
    FINALFUNC = @extschema@._order_lines_final, FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);

-- The library's version and the installed catalog's (src/source/configure.rs).
CREATE FUNCTION @extschema@."cda_analytics_version"() RETURNS TABLE (
	"library" TEXT,  /* String */
	"catalog" TEXT  /* Option < String > */
)
STRICT STABLE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cda_analytics_version_wrapper';

-- The daily digest, queued in cda_notifications for the HTTP server's notifier to send: the LTV
-- refresh (status and key figures), the customers newly at high churn risk, the new anomalies
-- and the cda-* pg_cron jobs that failed, each only as far as it is new since the previous
-- digest. At most 4,096 characters (one Telegram message): long lists name the first max_listed
-- and point to the dashboard (dashboard_url, when given). Returns the notification's id, or NULL
-- when nothing is new (then nothing is queued). Wakes the notifier with NOTIFY
-- cda_notifications.
CREATE FUNCTION @extschema@.queue_digest(dashboard_url text DEFAULT NULL, max_listed integer DEFAULT 10)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    prev record;
    run record;
    r record;
    last_cron bigint;
    url text := pg_catalog.rtrim(dashboard_url, '/');
    sections text[] := '{}';
    n bigint;
    i integer;
    max_week date;
    from_week date;
    body text;
    line text;
    id bigint;
BEGIN
    IF max_listed IS NULL OR max_listed NOT BETWEEN 1 AND 50 THEN
        RAISE EXCEPTION 'max_listed must be between 1 and 50, got %', coalesce(max_listed::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF url IS NOT NULL AND url !~ '^https?://' THEN
        RAISE EXCEPTION 'dashboard_url must start with http:// or https://, got "%"', url
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One digest at a time: the second waits and then sees the first.
    LOCK TABLE @extschema@.cda_notifications IN SHARE ROW EXCLUSIVE MODE;
    SELECT n_.last_ltv_run_id, n_.last_anomaly_week, n_.last_cron_run_id INTO prev
    FROM @extschema@.cda_notifications n_
    WHERE n_.kind = 'digest' ORDER BY n_.notification_id DESC LIMIT 1;

    -- The latest LTV refresh, when it is newer than the one the previous digest reported.
    SELECT * INTO run FROM @extschema@.ml_ltv_runs l WHERE l.run_id > coalesce(prev.last_ltv_run_id, 0)
    ORDER BY l.run_id DESC LIMIT 1;
    IF FOUND THEN
        line := pg_catalog.format('LTV refresh as of %s: %s users, %s orders counted, %s left out, %s s.',
                                  pg_catalog.to_char(run.as_of_date, 'YYYY-MM-DD'), run.users, run.orders_counted, run.orders_read - run.orders_counted,
                                  round((run.duration_ms / 1000)::numeric, 1));
        SELECT line || pg_catalog.format(E'\n  Average 6-month LTV %s over %s customers whose 6 months elapsed.',
                                          round(s.revenue_sum / s.users_measured, 2), s.users_measured)
        INTO line FROM @extschema@.ml_ltv_summary s WHERE s.horizon = '6m' AND s.users_measured > 0;
        sections := sections || line;
    END IF;

    -- Customers newly at high churn risk (critical or high, still active), most valuable first.
    -- (The count over all of them, before the LIMIT, as a window.)
    line := NULL;
    FOR r IN SELECT s.user_id, s.risk_band, s.probability, l.lifetime_revenue AS lifetime, count(*) OVER () AS total
             FROM @extschema@.ml_churn_scores s
             LEFT JOIN @extschema@.ml_user_ltv l ON l.user_id = s.user_id
             WHERE s.risk_band IN ('critical', 'high') AND s.eligible
               AND NOT EXISTS (SELECT FROM @extschema@.cda_digest_high_risk h WHERE h.user_id = s.user_id)
             ORDER BY l.lifetime_revenue DESC NULLS LAST, s.probability DESC, s.user_id LIMIT max_listed LOOP
        n := r.total;
        line := coalesce(line, '') || pg_catalog.format(E'\n  %s: %s, %s%%, lifetime revenue %s', r.user_id, r.risk_band,
                                                        round((100 * r.probability)::numeric), coalesce(r.lifetime::text, '-'));
    END LOOP;
    IF line IS NOT NULL THEN
        line := pg_catalog.format('Newly at high churn risk: %s %s, most valuable first:', n,
                                  CASE WHEN n = 1 THEN 'customer' ELSE 'customers' END) || line;
        IF n > max_listed THEN
            line := line || pg_catalog.format(E'\n  and %s more%s', n - max_listed,
                                              coalesce(': ' || url || '/churn', ''));
        END IF;
        sections := sections || line;
    END IF;
    DELETE FROM @extschema@.cda_digest_high_risk;
    INSERT INTO @extschema@.cda_digest_high_risk
    SELECT s.user_id FROM @extschema@.ml_churn_scores s WHERE s.risk_band IN ('critical', 'high') AND s.eligible;

    -- Anomalies of weeks after the last one reported (the first digest: the latest judged week).
    SELECT max(w.week_start) INTO max_week FROM @extschema@.ml_user_anomalies_weekly w WHERE w.is_anomaly;
    from_week := coalesce(prev.last_anomaly_week + 1, max_week);
    line := NULL;
    FOR r IN SELECT w.*, count(*) OVER () AS total, min(w.week_start) OVER () AS first_week
             FROM @extschema@.ml_user_anomalies_weekly w WHERE w.is_anomaly AND w.week_start >= from_week
             ORDER BY w.anomaly_score DESC, w.user_id LIMIT max_listed LOOP
        n := r.total;
        from_week := r.first_week;
        line := coalesce(line, '') || pg_catalog.format(E'\n  %s, week of %s: %s orders, spend %s, score %s (%s)', r.user_id,
                                                        pg_catalog.to_char(r.week_start, 'YYYY-MM-DD'),
                                                        r.orders, round(r.spend::numeric, 2), round(r.anomaly_score::numeric, 1),
                                                        pg_catalog.array_to_string(r.triggers, ', '));
    END LOOP;
    IF line IS NOT NULL THEN
        line := pg_catalog.format('New anomalies: %s %s in the %s, highest score first:', n,
                                  CASE WHEN n = 1 THEN 'customer-week' ELSE 'customer-weeks' END,
                                  CASE WHEN from_week = max_week THEN 'week of ' || pg_catalog.to_char(max_week, 'YYYY-MM-DD')
                                       ELSE 'weeks of ' || pg_catalog.to_char(from_week, 'YYYY-MM-DD') || ' to '
                                            || pg_catalog.to_char(max_week, 'YYYY-MM-DD') END) || line;
        IF n > max_listed THEN
            line := line || pg_catalog.format(E'\n  and %s more%s', n - max_listed,
                                              coalesce(': ' || url || '/anomalies', ''));
        END IF;
        sections := sections || line;
    END IF;

    -- The cda-* pg_cron jobs that failed since the previous digest (when pg_cron is installed here;
    -- read dynamically, so that the function does not depend on it).
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        line := NULL;
        i := 0;
        FOR r IN EXECUTE 'SELECT d.runid, j.jobname::text AS jobname, d.start_time, d.return_message::text AS message
                          FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
                          WHERE d.status = ''failed'' AND d.runid > $1 AND j.jobname LIKE ''cda-%''
                          ORDER BY d.runid' USING coalesce(prev.last_cron_run_id, 0) LOOP
            i := i + 1;
            last_cron := r.runid;
            IF i <= max_listed THEN
                line := coalesce(line, '') || pg_catalog.format(E'\n  %s at %s: %s', r.jobname,
                    pg_catalog.to_char(r.start_time, 'YYYY-MM-DD HH24:MI'), pg_catalog.left(coalesce(r.message, ''), 200));
            END IF;
        END LOOP;
        IF i > 0 THEN
            sections := sections || (pg_catalog.format('Failed jobs: %s', i) || line
                                     || CASE WHEN i > max_listed THEN pg_catalog.format(E'\n  and %s more (cron.job_run_details)', i - max_listed) ELSE '' END);
        END IF;
    END IF;

    IF pg_catalog.cardinality(sections) = 0 THEN
        RETURN NULL;
    END IF;
    body := pg_catalog.format('cda_analytics digest, %s', pg_catalog.to_char(pg_catalog.now(), 'YYYY-MM-DD HH24:MI TZ'))
            || coalesce(E'\n' || url, '');
    FOREACH line IN ARRAY sections LOOP
        body := body || E'\n\n' || line;
    END LOOP;
    -- Telegram's limit: cut at a line and say where the rest is.
    IF pg_catalog.length(body) > 4096 THEN
        body := pg_catalog.left(body, 4000);
        body := pg_catalog.left(body, pg_catalog.length(body) - pg_catalog.strpos(pg_catalog.reverse(body), E'\n'))
                || E'\n... (cut at 4,096 characters' || coalesce('; more in ' || url, '') || ')';
    END IF;
    INSERT INTO @extschema@.cda_notifications (kind, body, last_ltv_run_id, last_anomaly_week, last_cron_run_id)
    VALUES ('digest', body, coalesce(run.run_id, prev.last_ltv_run_id), coalesce(max_week, prev.last_anomaly_week),
            coalesce(last_cron, prev.last_cron_run_id))
    RETURNING notification_id INTO id;
    PERFORM pg_catalog.pg_notify('cda_notifications', id::text);
    RETURN id;
END
$$;

-- Raises 42704, with how to install it, when pg_cron is not installed in this database.
CREATE FUNCTION @extschema@._require_pg_cron()
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in database %', pg_catalog.current_database()
            USING ERRCODE = 'undefined_object',
                  HINT = 'Install it (shared_preload_libraries = ''pg_cron'', cron.database_name = this database, then CREATE EXTENSION pg_cron), or schedule the commands of docs/scheduling.md with cron.schedule_in_database() from the database pg_cron runs in.';
    END IF;
END
$$;

-- The recommended schedule (docs/scheduling.md) installed in pg_cron in one call, in this
-- database: LTV and RFM every night at at_hour (30 and 40 minutes past), then, for each model
-- named, clusters, CLV, churn, purchase scores and recommendations, the anomalies every
-- Monday, and with digest the daily digest for the notifier (queue_digest). Every job works as of the day that just ended in the configured time zone, read when
-- the job runs. Jobs are named cda-*; calling it again replaces them. Returns pg_cron's rows.
CREATE FUNCTION @extschema@.schedule_analytics_jobs(
    at_hour              integer DEFAULT 2,
    cluster_model        text    DEFAULT NULL,
    clv_model            text    DEFAULT NULL,
    spend_model          text    DEFAULT NULL,
    churn_model          text    DEFAULT NULL,
    purchase_model       text    DEFAULT NULL,
    recommender_model    text    DEFAULT NULL,
    digest               boolean DEFAULT false,
    dashboard_url        text    DEFAULT NULL)
RETURNS TABLE (jobid bigint, jobname text, schedule text, command text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- Yesterday in the shop's time zone, when the job runs (a later configure_source() counts).
    yday constant text := '(SELECT (pg_catalog.now() AT TIME ZONE c.value)::date - 1 '
                          'FROM @extschema@.cda_configuration() c WHERE c.setting = ''time_zone'')';
    h integer := at_hour;
    jobs text[] := ARRAY[]::text[];
    j integer;
BEGIN
    PERFORM @extschema@._require_pg_cron();
    IF h IS NULL OR h NOT BETWEEN 0 AND 22 THEN
        RAISE EXCEPTION 'at_hour must be between 0 and 22, got %', coalesce(h::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The jobs run from at_hour:30 to (at_hour + 1):50.';
    END IF;
    IF cluster_model IS NOT NULL AND NOT EXISTS (SELECT FROM @extschema@.ml_kmeans_models m WHERE m.model_name = cluster_model) THEN
        RAISE EXCEPTION 'no clustering model named "%"', cluster_model
            USING ERRCODE = 'undefined_object', HINT = 'Fit it first with kmeans_fit().';
    END IF;
    IF clv_model IS NOT NULL AND NOT EXISTS (SELECT FROM @extschema@.ml_clv_models m WHERE m.model_name = clv_model AND m.model <> 'gamma_gamma') THEN
        RAISE EXCEPTION 'no CLV purchase model named "%"', clv_model
            USING ERRCODE = 'undefined_object', HINT = 'Fit it first with clv_fit() (bgnbd, mbgnbd or pareto_nbd).';
    END IF;
    IF spend_model IS NOT NULL AND (clv_model IS NULL OR NOT EXISTS (SELECT FROM @extschema@.ml_clv_models m WHERE m.model_name = spend_model AND m.model = 'gamma_gamma')) THEN
        RAISE EXCEPTION 'spend model "%" needs a clv_model and a fitted gamma_gamma model of that name', spend_model
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Fit it first: clv_fit(name, ''gamma_gamma'').';
    END IF;
    IF churn_model IS NOT NULL AND NOT EXISTS (SELECT FROM @extschema@.ml_churn_models m WHERE m.model_name = churn_model AND m.target = 'churn') THEN
        RAISE EXCEPTION 'no churn model named "%"', churn_model
            USING ERRCODE = 'undefined_object', HINT = 'Train it first with churn_train().';
    END IF;
    IF purchase_model IS NOT NULL AND NOT EXISTS (SELECT FROM @extschema@.ml_churn_models m WHERE m.model_name = purchase_model AND m.target = 'purchase') THEN
        RAISE EXCEPTION 'no purchase model named "%"', purchase_model
            USING ERRCODE = 'undefined_object', HINT = 'Train it first with churn_train(target => ''purchase'').';
    END IF;
    IF recommender_model IS NOT NULL AND NOT EXISTS (SELECT FROM @extschema@.ml_recommender_models m WHERE m.model_name = recommender_model) THEN
        RAISE EXCEPTION 'no recommender named "%"', recommender_model
            USING ERRCODE = 'undefined_object', HINT = 'Train it first with train_recommender().';
    END IF;
    -- (name, schedule, command) triples, flat.
    jobs := jobs || ARRAY['cda-ltv', pg_catalog.format('30 %s * * *', h),
                          pg_catalog.format('SELECT @extschema@.calculate_all_ltv(%s)', yday)];
    jobs := jobs || ARRAY['cda-rfm', pg_catalog.format('40 %s * * *', h),
                          pg_catalog.format('SELECT @extschema@.calculate_all_rfm(%s)', yday)];
    IF cluster_model IS NOT NULL THEN
        jobs := jobs || ARRAY['cda-clusters', pg_catalog.format('50 %s * * *', h),
                              pg_catalog.format('SELECT @extschema@.calculate_all_clusters(%L, %s)', cluster_model, yday)];
    END IF;
    IF clv_model IS NOT NULL THEN
        jobs := jobs || ARRAY['cda-clv', pg_catalog.format('0 %s * * *', h + 1),
                              pg_catalog.format('SELECT count(*) FROM @extschema@.calculate_all_clv(%L, %L, as_of => %s)', clv_model, spend_model, yday)];
    END IF;
    IF churn_model IS NOT NULL THEN
        jobs := jobs || ARRAY['cda-churn', pg_catalog.format('10 %s * * *', h + 1),
                              pg_catalog.format('SELECT count(*) FROM @extschema@.calculate_all_churn(%L, %s)', churn_model, yday)];
    END IF;
    IF purchase_model IS NOT NULL THEN
        jobs := jobs || ARRAY['cda-purchase', pg_catalog.format('20 %s * * *', h + 1),
                              pg_catalog.format('SELECT count(*) FROM @extschema@.calculate_all_purchase(%L, %s)', purchase_model, yday)];
    END IF;
    IF recommender_model IS NOT NULL THEN
        jobs := jobs || ARRAY['cda-recommendations', pg_catalog.format('30 %s * * *', h + 1),
                              pg_catalog.format('SELECT count(*) FROM @extschema@.calculate_all_recommendations(%L, as_of => %s)', recommender_model, yday)];
    END IF;
    jobs := jobs || ARRAY['cda-anomalies', pg_catalog.format('50 %s * * 1', h + 1),
                          pg_catalog.format('SELECT count(*) FROM @extschema@.calculate_all_anomalies(%s)', yday)];
    IF digest THEN
        jobs := jobs || ARRAY['cda-digest', pg_catalog.format('55 %s * * *', h + 1),
                              pg_catalog.format('SELECT @extschema@.queue_digest(%L)', dashboard_url)];
    END IF;
    FOR j IN 0 .. pg_catalog.array_length(jobs, 1) / 3 - 1 LOOP
        PERFORM cron.schedule(jobs[3 * j + 1], jobs[3 * j + 2], jobs[3 * j + 3]);
    END LOOP;
    RETURN QUERY SELECT c.jobid, c.jobname::text, c.schedule::text, c.command::text FROM cron.job c
                 WHERE c.jobname LIKE 'cda-%' AND c.database = pg_catalog.current_database()
                   AND c.username = CURRENT_USER
                 ORDER BY c.jobid;
END
$$;

-- Removes the jobs schedule_analytics_jobs() installed (cda-* of this database and role).
CREATE FUNCTION @extschema@.unschedule_analytics_jobs()
RETURNS TABLE (jobname text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    PERFORM @extschema@._require_pg_cron();
    FOR r IN SELECT c.jobid, c.jobname FROM cron.job c
             WHERE c.jobname LIKE 'cda-%' AND c.database = pg_catalog.current_database()
               AND c.username = CURRENT_USER ORDER BY c.jobid
    LOOP
        PERFORM cron.unschedule(r.jobid);
        jobname := r.jobname::text;
        RETURN NEXT;
    END LOOP;
END
$$;

-- As at the end of every install: no function of the extension is executable by PUBLIC (the new
-- ones included).
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

-- ---------------------------------------------------------------------------------------------
-- What every object is, for psql's \d+ and \df+, BI tools and catalog browsers: a COMMENT on
-- every table, view, column and function of the extension (pg_test/sql/19_catalog.sql fails
-- when one has none). Functions are commented by name, every overload alike.

-- What every table and view holds.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('cda_config', 'Where the shop''s users and orders are and how to read them (one row; none means the defaults listed by cda_configuration()). Set by configure_source() and configure_ltv(), which check before storing.'),
        ('cda_item_config', 'Where the order items and products are (one row; none means the defaults listed by item_configuration()). Set by configure_items(), which checks before storing.'),
        ('ml_user_ltv_rows', 'The stored rows behind ml_user_ltv, one per user, written by calculate_all_ltv() (only the rows that changed). Read ml_user_ltv instead.'),
        ('ml_ltv_as_of', 'The as-of date and time of the LTV refresh that wrote ml_user_ltv_rows (one row once a refresh ran).'),
        ('ml_user_ltv', 'One row per user: retrospective lifetime value (revenue and orders over 3, 6 and 12 months from signup, and lifetime) as of the latest calculate_all_ltv(). Amounts in the orders'' currency units.'),
        ('ml_ltv_runs', 'One row per calculate_all_ltv() run: what it read, what it counted, what it left out and why, and the settings it ran with.'),
        ('ltv_last_run', 'The latest row of ml_ltv_runs: what the refresh behind ml_user_ltv read, counted and left out.'),
        ('ml_ltv_summary', 'Per horizon (3m, 6m, 12m, lifetime) of the latest LTV refresh: users measured, buyers, revenue, median and 95th percentile, computed from the rows it wrote (get_ltv_summary() reads it).'),
        ('ml_ltv_distribution', 'Histograms of the latest LTV refresh for the bin counts in ml_ltv_runs.distribution_bins (ltv_distribution() reads them).'),
        ('rfm_segment_map', 'A custom RFM segment map: score boxes, the first matching rule in priority order wins. Empty means the default map (rfm_segment_rules() lists the one in effect).'),
        ('ml_rfm_runs', 'One row per calculate_all_rfm() run, with the breakpoints its scores came from: element i of each array is what a customer needs for score i + 1 (for recency: at most that many days).'),
        ('ml_user_rfm_rows', 'The stored rows behind ml_user_rfm, one per user, written by calculate_all_rfm() (only the rows that changed). Read ml_user_rfm instead.'),
        ('ml_rfm_as_of', 'The as-of date and run of the RFM refresh that wrote ml_user_rfm_rows (one row once a refresh ran).'),
        ('ml_user_rfm', 'One row per user: recency, frequency and monetary value, their 1-5 scores and the named segment, as of the latest calculate_all_rfm(). Users without a successful order are in segment ''No Orders''.'),
        ('ml_kmeans_models', 'Fitted K-means models, one row per version (kmeans_fit() adds the next; kmeans_assign() uses the latest): the features, their scaling and the centroids.'),
        ('ml_user_clusters', 'One row per clustered user from the latest calculate_all_clusters(): the cluster of the stored model and the distance to its centroid.'),
        ('ml_clv_models', 'Fitted customer-base models (clv_fit(): BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma), one per name, with parameters, standard errors and the fit''s diagnostics.'),
        ('ml_user_clv', 'One row per customer from the latest calculate_all_clv(): the BTYD summary, probability alive, expected purchases over the horizon, expected spend and CLV.'),
        ('ml_user_anomalies_weekly', 'One row per user and judged week from the latest calculate_all_anomalies(): the week''s orders and spend, their scores against the user''s own history, and whether it is an anomaly and why.'),
        ('ml_churn_models', 'Trained churn and purchase models (churn_train()), one per name: the features and their scaling, the classifier (logistic weights or tree nodes), the threshold and the training window.'),
        ('ml_churn_model_metrics', 'Each scorer''s quality when a churn or purchase model was trained (logistic, tree and the P(alive) baseline), on the training and the validation rows.'),
        ('ml_churn_scores', 'One row per customer from the latest calculate_all_churn(): the probability of no successful order in the model''s label window, its band and the features that raise it most.'),
        ('ml_purchase_scores', 'One row per customer from the latest calculate_all_purchase(): the probability of a successful order in the model''s label window, its band and the features that raise it most.'),
        ('ml_recommender_models', 'Trained recommenders (train_recommender()), one per name: algorithm, parameters, training window and size.'),
        ('ml_recommender_products', 'Each product of a trained recommender: its popularity and its stored neighbours, best first, as two arrays of the same length.'),
        ('ml_recommender_neighbors', 'The stored neighbours of each product of a trained recommender, one per row, ranked from 1: item-kNN''s similarities, or the largest weights of EASE''s item matrix.'),
        ('ml_user_recommendations', 'Every customer''s top products from the latest calculate_all_recommendations(), with the customer''s own products that led to each.'),
        ('cda_notifications', 'The outbox of notifications (the daily digest from queue_digest()), which the HTTP server''s notifier sends; one row per message.'),
        ('cda_notification_deliveries', 'Which recipient got which notification, recorded by the notifier only after the provider (Telegram) accepted it.'),
        ('cda_digest_high_risk', 'The customers at high churn risk when the last digest was made, so that the next digest names only the ones newly at risk.'),
        ('customer_latest', 'For BI tools: one row per user of the latest LTV refresh with the latest result of every capability (value and RFM segments, cluster, CLV, churn and purchase scores, anomalous weeks), plain typed columns; NULL where a capability has not run.'),
        ('run_history_daily', 'For time-series panels: per day, the LTV and RFM refreshes that finished that day (in the session''s time zone), with what the last of each read and how long it took.')
    ) AS t(rel, comment)
    LOOP
        EXECUTE pg_catalog.format('COMMENT ON %s @extschema@.%I IS %L',
            CASE (SELECT c.relkind FROM pg_catalog.pg_class c
                  WHERE c.oid = pg_catalog.format('@extschema@.%I', r.rel)::pg_catalog.regclass)
                WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, r.rel, r.comment);
    END LOOP;
END
$$;

-- Every column: its own comment, else for the views over stored rows the comment of the same
-- column of the table they read, else the comment of that column name wherever it appears ('*').
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        WITH cols AS (
            SELECT c.relname::text AS rel, a.attname::text AS col
            FROM pg_catalog.pg_depend d
            JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'cda_analytics'
            JOIN pg_catalog.pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'v')
            JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'e'
        ), given(rel, col, comment) AS (VALUES
        ('*', 'as_of_date', 'The as-of day the values were computed for: data up to and including it.'),
        ('*', 'model_name', 'The name the model was stored under.'),
        ('*', 'user_id', 'The customer: the user id of the shop''s users table.'),
        ('*', 'run_id', 'The refresh run (ml_ltv_runs or ml_rfm_runs) the row belongs to.'),
        ('*', 'singleton', 'Always true: the table holds at most one row.'),
        ('*', 'model_version', 'The version of the stored model that produced the row.'),
        ('*', 'product_id', 'The product: the product id of the shop''s products table.'),
        ('*', 'segment', 'The named segment the user is in.'),
        ('*', 'algorithm', 'The algorithm the model was trained with.'),
        ('*', 'configured_by', 'The role that set the configuration; it must be able to read every table and column named, whenever they are read.'),
        ('*', 'duration_ms', 'How long the run took, in milliseconds.'),
        ('*', 'eligible', 'Whether the customer met the model''s eligibility on the as-of day (first order at least min_tenure_days before, an order in the last active_days); the others are scored outside the validated population.'),
        ('*', 'feature_mean', 'Per feature: the mean subtracted before scaling (after log1p where log1p is true).'),
        ('*', 'feature_scale', 'Per feature: the standard deviation divided by after centring.'),
        ('*', 'features', 'The feature names, in the model''s order.'),
        ('*', 'fingerprint', 'A 128-bit hash of the row''s values, compared by the next refresh to find the rows it must rewrite.'),
        ('*', 'finished_at', 'When the run finished.'),
        ('*', 'fitted_at', 'When the model was fitted.'),
        ('*', 'last_order_date', 'The day of the user''s last successful order up to the as-of day.'),
        ('*', 'log1p', 'Per feature: whether log(1 + x) is taken before scaling.'),
        ('*', 'orders_before_signup', 'Successful orders dated before the user''s signup (counted in lifetime only).'),
        ('*', 'probability', 'The predicted probability, between 0 and 1.'),
        ('*', 'rows_removed', 'Stored rows the run removed (a changed row counts as removed and written).'),
        ('*', 'rows_written', 'Stored rows the run wrote; rows of users whose values did not change are left as they were.'),
        ('*', 'scored_at', 'When the row was scored.'),
        ('*', 'seed', 'The random seed: same data and seed, same model.'),
        ('*', 'segment_high', 'Lower bound of the High value segment, in currency units of lifetime revenue.'),
        ('*', 'segment_low', 'Lower bound of the Low value segment, in currency units of lifetime revenue.'),
        ('*', 'segment_medium', 'Lower bound of the Medium value segment, in currency units of lifetime revenue.'),
        ('*', 'segment_vip', 'Lower bound of the VIP value segment, in currency units of lifetime revenue.'),
        ('*', 'successful_statuses', 'The order statuses that count as a sale.'),
        ('*', 'time_zone', 'The time zone in which order times become days.'),
        ('*', 'top_reasons', 'The features that raise the customer''s score the most, strongest first.'),
        ('*', 'trained_at', 'When the model was trained.'),
        ('*', 'updated_at', 'When the configuration was last changed.'),
        ('*', 'version', 'The model''s version: a refit or retrain under the same name adds one.'),
        ('*', 'time_unit', 'The time unit of recency, T and the horizons: day or week.'),
        ('*', 'parameters', 'The model''s parameters.'),
        ('*', 'customers', 'Customers the model was trained or fitted on.'),
                ('*', 'threshold', 'The probability threshold above which a customer is predicted positive.'),
        ('*', 'rank', 'The position, from 1 (best).'),
        ('*', 'frequency', 'Successful orders.'),
        ('*', 'monetary', 'The monetary value scored: total revenue, or average order value with monetary => ''average''.'),
                ('*', 'revenue', 'Revenue of the successful orders, in the orders'' currency units.'),
        ('*', 'orders', 'Successful orders.'),
        ('*', 'categories', 'Distinct product categories bought (NULL without order items and products).'),
        ('*', 'because_of', 'The customer''s own products that raised this product''s score the most (at most three; empty for popularity).'),
        ('*', 'score', 'The model''s score for the product (higher is better).'),
        ('*', 'computed_at', 'When the row was computed.'),
        ('*', 'popularity', 'Distinct buyers of the product over the model''s popularity window (the cold-start answer).'),
        ('*', 'neighbor_ids', 'The product''s stored neighbours, best first.'),
        ('*', 'neighbor_id', 'The neighbouring product.'),
        ('*', 'weight', 'The neighbour''s similarity (item-kNN) or weight in EASE''s item matrix.'),
        ('*', 'pairs', 'Distinct customer-product pairs trained on.'),
        ('*', 'products', 'Products the model knows.'),
        ('*', 'lines_left_out', 'Order lines left out of training (bad quantity or price, unknown product, not a product).'),
        ('cda_config', 'users_schema', 'Schema of the users table.'),
        ('cda_config', 'users_table', 'The users table (one row per user).'),
        ('cda_config', 'user_id_column', 'The users table''s user id column.'),
        ('cda_config', 'registered_at_column', 'The users table''s signup time column.'),
        ('cda_config', 'orders_schema', 'Schema of the orders table.'),
        ('cda_config', 'orders_table', 'The orders table (one row per order).'),
        ('cda_config', 'order_user_id_column', 'The orders table''s user id column.'),
        ('cda_config', 'order_date_column', 'The orders table''s order time column.'),
        ('cda_config', 'status_column', 'The orders table''s status column.'),
        ('cda_config', 'amount_column', 'The orders table''s amount column (currency units).'),
        ('cda_config', 'cac_margin', 'The margin applied to the average 6-month LTV for the recommended maximum customer acquisition cost.'),
        ('cda_item_config', 'order_id_column', 'The orders table''s order id column, which the order items refer to.'),
        ('cda_item_config', 'items_schema', 'Schema of the order items table.'),
        ('cda_item_config', 'items_table', 'The order items table.'),
        ('cda_item_config', 'item_order_id_column', 'The order items'' order id column.'),
        ('cda_item_config', 'item_product_id_column', 'The order items'' product id column.'),
        ('cda_item_config', 'quantity_column', 'The order items'' quantity column.'),
        ('cda_item_config', 'unit_price_column', 'The order items'' unit price column (what the customer paid per unit).'),
        ('cda_item_config', 'products_schema', 'Schema of the products table.'),
        ('cda_item_config', 'products_table', 'The products table (one row per product).'),
        ('cda_item_config', 'product_id_column', 'The products table''s product id column.'),
        ('cda_item_config', 'category_column', 'The products table''s category column.'),
        ('cda_item_config', 'non_product_column', 'A boolean column of the products, true for what is not a product (postage, fees); NULL for none.'),
        ('ml_user_ltv_rows', 'signup_date', 'The user''s signup day, in the configured time zone.'),
        ('ml_user_ltv_rows', 'revenue_3m', 'Revenue of successful orders in the 3 months from signup, in currency units.'),
        ('ml_user_ltv_rows', 'revenue_6m', 'Revenue of successful orders in the 6 months from signup, in currency units.'),
        ('ml_user_ltv_rows', 'revenue_12m', 'Revenue of successful orders in the 12 months from signup, in currency units.'),
        ('ml_user_ltv_rows', 'lifetime_revenue', 'Revenue of all successful orders up to the as-of day, in currency units.'),
        ('ml_user_ltv_rows', 'orders_3m', 'Successful orders in the 3 months from signup.'),
        ('ml_user_ltv_rows', 'orders_6m', 'Successful orders in the 6 months from signup.'),
        ('ml_user_ltv_rows', 'orders_12m', 'Successful orders in the 12 months from signup.'),
        ('ml_user_ltv_rows', 'orders_lifetime', 'Successful orders up to the as-of day.'),
        ('ml_user_ltv_rows', 'avg_order_value_3m', 'revenue_3m / orders_3m; NULL without orders.'),
        ('ml_user_ltv_rows', 'avg_order_value_6m', 'revenue_6m / orders_6m; NULL without orders.'),
        ('ml_user_ltv_rows', 'avg_order_value_12m', 'revenue_12m / orders_12m; NULL without orders.'),
        ('ml_user_ltv_rows', 'avg_order_value_lifetime', 'lifetime_revenue / orders_lifetime; NULL without orders.'),
        ('ml_user_ltv_rows', 'first_order_date', 'The day of the user''s first successful order.'),
        ('ml_user_ltv_rows', 'horizon_3m_complete', 'Whether the 3 months from signup had fully elapsed by the as-of day (the horizon''s figure is final).'),
        ('ml_user_ltv_rows', 'horizon_6m_complete', 'Whether the 6 months from signup had fully elapsed by the as-of day.'),
        ('ml_user_ltv_rows', 'horizon_12m_complete', 'Whether the 12 months from signup had fully elapsed by the as-of day.'),
        ('ml_user_ltv', 'days_since_last_order', 'Days from the last successful order to the as-of day; NULL without orders.'),
        ('ml_user_ltv', 'calculated_at', 'When the refresh that wrote the row ran.'),
        ('ml_ltv_as_of', 'calculated_at', 'When the refresh ran.'),
        ('ml_ltv_runs', 'started_at', 'When the run started.'),
        ('ml_ltv_runs', 'users', 'Users in the results.'),
        ('ml_ltv_runs', 'users_read', 'Rows read from the users table.'),
        ('ml_ltv_runs', 'users_skipped_null_id', 'Users left out: NULL user id.'),
        ('ml_ltv_runs', 'users_skipped_null_signup', 'Users left out: NULL signup time.'),
        ('ml_ltv_runs', 'users_skipped_signup_after_as_of', 'Users left out: signed up after the as-of day.'),
        ('ml_ltv_runs', 'orders_read', 'Orders read (successful or with a NULL status).'),
        ('ml_ltv_runs', 'orders_counted', 'Orders counted in the results.'),
        ('ml_ltv_runs', 'orders_before_signup', 'Counted orders dated before their user''s signup (lifetime only).'),
        ('ml_ltv_runs', 'orders_skipped_null_status', 'Orders left out: NULL status.'),
        ('ml_ltv_runs', 'orders_skipped_null_user', 'Orders left out: NULL user id.'),
        ('ml_ltv_runs', 'orders_skipped_unknown_user', 'Orders left out: user not in the users table.'),
        ('ml_ltv_runs', 'orders_skipped_null_date', 'Orders left out: NULL order time.'),
        ('ml_ltv_runs', 'orders_skipped_after_as_of', 'Orders left out: after the as-of day.'),
        ('ml_ltv_runs', 'orders_skipped_null_amount', 'Orders left out: NULL amount.'),
        ('ml_ltv_runs', 'orders_skipped_negative_amount', 'Orders left out: negative, NaN or infinite amount.'),
        ('ml_ltv_runs', 'orders_skipped_user_left_out', 'Orders left out: their user was left out.'),
        ('ml_ltv_runs', 'amounts_rounded', 'Amounts with more decimals than amount_scale, rounded.'),
        ('ml_ltv_runs', 'amount_scale', 'Decimal places of the amounts (from the amount column''s type).'),
        ('ml_ltv_runs', 'users_source', 'The users table read.'),
        ('ml_ltv_runs', 'orders_source', 'The orders table read.'),
        ('ml_ltv_runs', 'cohort_12m_revenue_6m', '6-month revenue of the users whose 12 months had elapsed (the base of the 12m/6m growth).'),
        ('ml_ltv_runs', 'cohort_12m_revenue_12m', '12-month revenue of the same users.'),
        ('ml_ltv_runs', 'distribution_bins', 'The bin counts whose histograms the run stored in ml_ltv_distribution.'),
        ('ml_ltv_summary', 'horizon', 'The horizon: 3m, 6m, 12m or lifetime.'),
        ('ml_ltv_summary', 'users_measured', 'Users whose horizon had fully elapsed (all users for lifetime).'),
        ('ml_ltv_summary', 'users_with_orders', 'Measured users with a successful order in the horizon.'),
        ('ml_ltv_summary', 'revenue_sum', 'Revenue of the measured users in the horizon, in currency units.'),
        ('ml_ltv_summary', 'median', 'Median revenue per measured user in the horizon.'),
        ('ml_ltv_summary', 'p95', '95th percentile of revenue per measured user in the horizon.'),
        ('ml_ltv_distribution', 'metric', 'The ml_user_ltv column binned.'),
        ('ml_ltv_distribution', 'bins', 'The number of bins of the histogram.'),
        ('ml_ltv_distribution', 'bin', 'The bin, from 1 (lowest values).'),
        ('ml_ltv_distribution', 'range_min', 'The bin''s lower edge, in the metric''s unit.'),
        ('ml_ltv_distribution', 'range_max', 'The bin''s upper edge, in the metric''s unit.'),
        ('ml_ltv_distribution', 'users', 'Users whose metric falls in the bin.'),
        ('ml_ltv_distribution', 'percentage', 'Share of users in the bin, in percent.'),
        ('rfm_segment_map', 'priority', 'The rule''s position: the first matching rule wins.'),
        ('rfm_segment_map', 'segment', 'The name of the segment the box assigns.'),
        ('rfm_segment_map', 'r_min', 'Lowest recency score of the box (1-5).'),
        ('rfm_segment_map', 'r_max', 'Highest recency score of the box (1-5).'),
        ('rfm_segment_map', 'f_min', 'Lowest frequency score of the box (1-5).'),
        ('rfm_segment_map', 'f_max', 'Highest frequency score of the box (1-5).'),
        ('rfm_segment_map', 'm_min', 'Lowest monetary score of the box (1-5).'),
        ('rfm_segment_map', 'm_max', 'Highest monetary score of the box (1-5).'),
        ('ml_rfm_runs', 'monetary', 'What M scored: total revenue or average order value.'),
        ('ml_rfm_runs', 'users', 'Users in the results.'),
        ('ml_rfm_runs', 'customers_scored', 'Users with a successful order, scored.'),
        ('ml_rfm_runs', 'users_without_orders', 'Users without a successful order (segment No Orders).'),
        ('ml_rfm_runs', 'recency_breakpoints', 'Days since the last order at most which each recency score from 2 needs.'),
        ('ml_rfm_runs', 'frequency_breakpoints', 'Orders each frequency score from 2 needs.'),
        ('ml_rfm_runs', 'monetary_breakpoints', 'Monetary value each monetary score from 2 needs, in currency units.'),
        ('ml_rfm_runs', 'monetary_breakpoint_num', 'The monetary breakpoints as exact fractions of minor units: numerators.'),
        ('ml_rfm_runs', 'monetary_breakpoint_den', 'The monetary breakpoints as exact fractions of minor units: denominators.'),
        ('ml_rfm_runs', 'segment_map', 'The segment map the run used: default or custom.'),
        ('ml_user_rfm_rows', 'r_score', 'Recency score, 1 (longest ago) to 5 (most recent); NULL without orders.'),
        ('ml_user_rfm_rows', 'f_score', 'Frequency score, 1 to 5; NULL without orders.'),
        ('ml_user_rfm_rows', 'm_score', 'Monetary score, 1 to 5; NULL without orders.'),
        ('ml_user_rfm_rows', 'rfm_cell', 'The three scores as text, e.g. 545.'),
        ('ml_user_rfm_rows', 'frequency', 'Successful orders up to the as-of day.'),
        ('ml_user_rfm_rows', 'revenue', 'Revenue of the successful orders up to the as-of day, in currency units.'),
        ('ml_user_rfm', 'recency_days', 'Days from the last successful order to the as-of day; NULL without orders.'),
        ('ml_kmeans_models', 'k', 'The number of clusters.'),
        ('ml_kmeans_models', 'centroids', 'The centroids in standardised feature space, k rows in cluster order, flattened.'),
        ('ml_kmeans_models', 'centroids_in_units', 'The centroids in feature units, flattened.'),
        ('ml_kmeans_models', 'cluster_names', 'Each cluster''s name, in cluster order.'),
        ('ml_kmeans_models', 'snapshot_date', 'The day of the feature snapshot fitted on.'),
        ('ml_kmeans_models', 'users_in_snapshot', 'Users in the snapshot.'),
        ('ml_kmeans_models', 'fitted_on_users', 'Users of the snapshot the fit used.'),
        ('ml_kmeans_models', 'inertia', 'Sum of squared distances to the nearest centroid, in standardised space.'),
        ('ml_kmeans_models', 'candidate_k', 'Each k tried (or the given k).'),
        ('ml_kmeans_models', 'candidate_silhouette', 'The silhouette of each k tried.'),
        ('ml_kmeans_models', 'k_chosen_by', 'given or silhouette.'),
        ('ml_kmeans_models', 'algorithm', 'The implementation and its settings.'),
        ('ml_user_clusters', 'cluster', 'The cluster number, in the model''s fixed order.'),
        ('ml_user_clusters', 'cluster_name', 'The cluster''s name in the model.'),
        ('ml_user_clusters', 'distance', 'Distance to the cluster''s centroid, in standardised feature space.'),
        ('ml_clv_models', 'model', 'bgnbd, mbgnbd, pareto_nbd or gamma_gamma.'),
        ('ml_clv_models', 'calibration_end', 'The last day of the data fitted on.'),
        ('ml_clv_models', 'parameters', 'The fitted parameters by name (r, alpha, a, b, s, beta, p, q, v as the model has them).'),
        ('ml_clv_models', 'std_errors', 'Standard errors of the parameters, from the observed information.'),
        ('ml_clv_models', 'log_likelihood', 'The log-likelihood at the fit.'),
        ('ml_clv_models', 'customers', 'Customers fitted on.'),
        ('ml_clv_models', 'distinct_rows', 'Distinct (frequency, recency, T) rows the likelihood summed over.'),
        ('ml_clv_models', 'penalizer', 'The L2 penalty on the parameters (0: none).'),
        ('ml_clv_models', 'iterations', 'Optimiser iterations of the best start.'),
        ('ml_clv_models', 'gradient_norm', 'Norm of the gradient at the fit (near 0 at a proper maximum).'),
        ('ml_clv_models', 'starts', 'Optimiser starts tried.'),
        ('ml_clv_models', 'starts_at_best', 'Starts that reached the best likelihood.'),
        ('ml_clv_models', 'fit_ms', 'How long the fit took, in milliseconds.'),
        ('ml_user_clv', 'frequency', 'Repeat purchase days in the data (the BTYD frequency).'),
        ('ml_user_clv', 'recency', 'Time from the first to the last purchase, in time_unit.'),
        ('ml_user_clv', 't', 'Time from the first purchase to the as-of day, in time_unit.'),
        ('ml_user_clv', 'monetary_value', 'Mean spend of the repeat purchase days; NULL without repeats.'),
        ('ml_user_clv', 'probability_alive', 'Probability the customer is still active.'),
        ('ml_user_clv', 'expected_purchases', 'Expected purchases over the horizon.'),
        ('ml_user_clv', 'probability_no_purchase', 'Probability of no purchase over the horizon.'),
        ('ml_user_clv', 'expected_spend', 'Expected spend per purchase (Gamma-Gamma); NULL without a spend model.'),
        ('ml_user_clv', 'clv', 'Discounted expected spend over the horizon, in currency units; NULL without a spend model.'),
        ('ml_user_clv', 'spend_model_name', 'The Gamma-Gamma model used, if any.'),
        ('ml_user_clv', 'horizon_months', 'The horizon, in months.'),
        ('ml_user_clv', 'monthly_discount', 'The monthly discount rate.'),
        ('ml_user_anomalies_weekly', 'week_start', 'The Monday of the week.'),
        ('ml_user_anomalies_weekly', 'orders', 'Successful orders in the week.'),
        ('ml_user_anomalies_weekly', 'spend', 'Spend in the week, in currency units.'),
        ('ml_user_anomalies_weekly', 'orders_z', 'The week''s orders as a z-score against the user''s previous weeks.'),
        ('ml_user_anomalies_weekly', 'spend_z', 'The week''s spend as a z-score against the user''s previous weeks.'),
        ('ml_user_anomalies_weekly', 'spend_robust_z', 'The week''s spend against the median and MAD of the user''s previous weeks.'),
        ('ml_user_anomalies_weekly', 'orders_ratio', 'The week''s orders over the user''s mean.'),
        ('ml_user_anomalies_weekly', 'spend_ratio', 'The week''s spend over the user''s mean.'),
        ('ml_user_anomalies_weekly', 'anomaly_score', 'The week''s anomaly score (the largest of the triggers'' standardised measures).'),
        ('ml_user_anomalies_weekly', 'is_anomaly', 'Whether the week is an anomaly.'),
        ('ml_user_anomalies_weekly', 'triggers', 'The rules that fired.'),
        ('ml_user_anomalies_weekly', 'insufficient_history', 'Whether the user had too few weeks to judge.'),
        ('ml_churn_models', 'target', 'churn (no successful order in the label window) or purchase (one).'),
        ('ml_churn_models', 'classifier', 'The classifier kept: logistic or tree.'),
        ('ml_churn_models', 'intercept', 'The logistic model''s intercept.'),
        ('ml_churn_models', 'weights', 'The logistic model''s weights, one per feature (standardised).'),
        ('ml_churn_models', 'tree_feature', 'Per tree node: the feature it splits on.'),
        ('ml_churn_models', 'tree_threshold', 'Per tree node: the standardised value below which a row goes left.'),
        ('ml_churn_models', 'tree_left', 'Per tree node: the left child (0 marks a leaf).'),
        ('ml_churn_models', 'tree_right', 'Per tree node: the right child.'),
        ('ml_churn_models', 'tree_value', 'Per tree node: the training rows'' positive rate.'),
        ('ml_churn_models', 'label_days', 'The label window after each snapshot, in days.'),
        ('ml_churn_models', 'min_tenure_days', 'Eligibility: the first order at least this many days before the snapshot.'),
        ('ml_churn_models', 'active_days', 'Eligibility: an order in this many days before the snapshot.'),
        ('ml_churn_models', 'btyd_model', 'The purchase model refitted at every snapshot for the p_alive and expected_purchases features; NULL when unused.'),
        ('ml_churn_models', 'btyd_fit_as_of', 'The as-of day of the latest scoring refresh''s BTYD fit.'),
        ('ml_churn_models', 'btyd_fit_parameters', 'That fit''s parameters (weeks).'),
        ('ml_churn_models', 'training_snapshots', 'The snapshot days trained on.'),
        ('ml_churn_models', 'validation_snapshots', 'The snapshot days validated on.'),
        ('ml_churn_models', 'eligible_training_rows', 'Eligible rows of the training snapshots.'),
        ('ml_churn_models', 'eligible_validation_rows', 'Eligible rows of the validation snapshots.'),
        ('ml_churn_models', 'sample_rate', 'The share of training rows used (sampled by a hash of user and day).'),
        ('ml_churn_models', 'train_ms', 'How long training took, in milliseconds.'),
        ('ml_churn_models', 'phase_ms', 'Milliseconds reading the orders, fitting the purchase model per snapshot, building features and labels, and fitting and evaluating the classifiers.'),
        ('ml_churn_model_metrics', 'scorer', 'logistic, tree or p_alive (the baseline).'),
        ('ml_churn_model_metrics', 'split', 'training or validation.'),
        ('ml_churn_model_metrics', 'chosen', 'Whether this scorer is the one the model keeps.'),
        ('ml_churn_model_metrics', 'rows', 'Customer-snapshot rows scored in the split.'),
        ('ml_churn_model_metrics', 'positives', 'Rows whose label is positive.'),
        ('ml_churn_model_metrics', 'roc_auc', 'Area under the ROC curve.'),
        ('ml_churn_model_metrics', 'pr_auc', 'Area under the precision-recall curve.'),
        ('ml_churn_model_metrics', 'precision', 'Precision at the threshold.'),
        ('ml_churn_model_metrics', 'recall', 'Recall at the threshold.'),
        ('ml_churn_model_metrics', 'f1', 'F1 at the threshold.'),
        ('ml_churn_model_metrics', 'true_positives', 'Rows predicted positive that were.'),
        ('ml_churn_model_metrics', 'false_positives', 'Rows predicted positive that were not.'),
        ('ml_churn_model_metrics', 'true_negatives', 'Rows predicted negative that were.'),
        ('ml_churn_model_metrics', 'false_negatives', 'Rows predicted negative that were not.'),
        ('ml_churn_model_metrics', 'top_decile_lift', 'Positive rate of the top-scored tenth over the overall rate.'),
        ('ml_churn_scores', 'probability', 'Probability of no successful order in the model''s label window.'),
        ('ml_churn_scores', 'risk_band', 'critical, high, medium or low.'),
        ('ml_purchase_scores', 'probability', 'Probability of a successful order in the model''s label window.'),
        ('ml_purchase_scores', 'band', 'high, medium or low.'),
        ('ml_recommender_models', 'parameters', 'lambda, neighbours, hybrid_weight, popularity_days and max_items.'),
        ('ml_recommender_models', 'customers', 'Customers trained on.'),
        ('ml_recommender_products', 'weights', 'The neighbours'' weights, in the order of neighbor_ids.'),
        ('ml_user_recommendations', 'rank', 'The product''s position in the customer''s list, from 1.'),
        ('ltv_last_run', 'run_id', 'The latest run of calculate_all_ltv() (its row in ml_ltv_runs).'),
        ('customer_latest', 'signup_date', 'The user''s signup day, in the configured time zone.'),
        ('customer_latest', 'lifetime_revenue', 'Revenue of all successful orders up to the LTV as-of day, in currency units.'),
        ('customer_latest', 'revenue_12m', 'Revenue of successful orders in the 12 months from signup, in currency units.'),
        ('customer_latest', 'orders_lifetime', 'Successful orders up to the LTV as-of day.'),
        ('customer_latest', 'avg_order_value_lifetime', 'lifetime_revenue / orders_lifetime; NULL without orders.'),
        ('customer_latest', 'first_order_date', 'The day of the user''s first successful order.'),
        ('customer_latest', 'days_since_last_order', 'Days from the last successful order to the LTV as-of day; NULL without orders.'),
        ('customer_latest', 'value_segment', 'The value segment by lifetime revenue, from ml_user_ltv.'),
        ('customer_latest', 'ltv_as_of', 'The as-of day of the LTV refresh.'),
        ('customer_latest', 'rfm_segment', 'The RFM segment, from ml_user_rfm; NULL when RFM has not run.'),
        ('customer_latest', 'r_score', 'Recency score 1-5 from ml_user_rfm.'),
        ('customer_latest', 'f_score', 'Frequency score 1-5 from ml_user_rfm.'),
        ('customer_latest', 'm_score', 'Monetary score 1-5 from ml_user_rfm.'),
        ('customer_latest', 'rfm_as_of', 'The as-of day of the RFM refresh.'),
        ('customer_latest', 'cluster_name', 'The cluster''s name, from ml_user_clusters.'),
        ('customer_latest', 'cluster_model', 'The K-means model the cluster belongs to.'),
        ('customer_latest', 'cluster_as_of', 'The as-of day of the cluster assignment.'),
        ('customer_latest', 'clv', 'Discounted expected spend over the CLV horizon, in currency units, from ml_user_clv.'),
        ('customer_latest', 'probability_alive', 'Probability the customer is still active, from ml_user_clv.'),
        ('customer_latest', 'expected_purchases', 'Expected purchases over the CLV horizon, from ml_user_clv.'),
        ('customer_latest', 'clv_as_of', 'The as-of day of the CLV scores.'),
        ('customer_latest', 'churn_probability', 'Probability of no successful order in the churn model''s label window, from ml_churn_scores.'),
        ('customer_latest', 'churn_risk_band', 'critical, high, medium or low, from ml_churn_scores.'),
        ('customer_latest', 'churn_as_of', 'The as-of day of the churn scores.'),
        ('customer_latest', 'purchase_probability', 'Probability of a successful order in the purchase model''s label window, from ml_purchase_scores.'),
        ('customer_latest', 'purchase_band', 'high, medium or low, from ml_purchase_scores.'),
        ('customer_latest', 'anomalous_weeks', 'Weeks judged anomalous in the latest anomaly refresh (0 when none).'),
        ('customer_latest', 'last_anomalous_week', 'The Monday of the latest anomalous week; NULL when none.'),
        ('run_history_daily', 'day', 'The day the refreshes finished, in the session''s time zone (the time axis).'),
        ('run_history_daily', 'ltv_runs', 'calculate_all_ltv() runs that finished that day.'),
        ('run_history_daily', 'ltv_duration_ms', 'How long the day''s last LTV refresh took, in milliseconds.'),
        ('run_history_daily', 'ltv_users', 'Users in the day''s last LTV refresh.'),
        ('run_history_daily', 'ltv_orders_counted', 'Orders the day''s last LTV refresh counted.'),
        ('run_history_daily', 'ltv_orders_left_out', 'Orders the day''s last LTV refresh read and left out (ml_ltv_runs says why).'),
        ('run_history_daily', 'ltv_as_of', 'The as-of day of the day''s last LTV refresh.'),
        ('run_history_daily', 'rfm_runs', 'calculate_all_rfm() runs that finished that day.'),
        ('run_history_daily', 'rfm_duration_ms', 'How long the day''s last RFM refresh took, in milliseconds.'),
        ('run_history_daily', 'rfm_customers_scored', 'Customers the day''s last RFM refresh scored.'),
        ('run_history_daily', 'rfm_as_of', 'The as-of day of the day''s last RFM refresh.'),
        ('cda_notifications', 'notification_id', 'The notification, in the order queued.'),
        ('cda_notifications', 'kind', 'What the notification is: digest.'),
        ('cda_notifications', 'created_at', 'When the notification was queued.'),
        ('cda_notifications', 'body', 'The message, plain text, at most 4,096 characters.'),
        ('cda_notifications', 'last_ltv_run_id', 'The LTV run the digest reported (the next reports a newer one only).'),
        ('cda_notifications', 'last_anomaly_week', 'The latest anomalous week the digest reported (the next reports later weeks only).'),
        ('cda_notifications', 'last_cron_run_id', 'The last pg_cron run the digest looked at (cron.job_run_details.runid).'),
        ('cda_notification_deliveries', 'notification_id', 'The notification delivered.'),
        ('cda_notification_deliveries', 'channel', 'How it was delivered: telegram.'),
        ('cda_notification_deliveries', 'recipient', 'Who got it: the Telegram chat id.'),
        ('cda_notification_deliveries', 'sent_at', 'When the provider accepted it.'),
        ('cda_notification_deliveries', 'provider_message_id', 'The provider''s id of the message (Telegram''s message_id).'),
        ('cda_digest_high_risk', 'user_id', 'A customer at critical or high churn risk (and still active) at the last digest.')
        ), base(view, tbl) AS (VALUES
            ('ml_user_ltv', 'ml_user_ltv_rows'), ('ml_user_rfm', 'ml_user_rfm_rows'), ('ltv_last_run', 'ml_ltv_runs')
        )
        SELECT cols.rel, cols.col, coalesce(g.comment, gb.comment, gd.comment) AS comment
        FROM cols
        LEFT JOIN given g ON g.rel = cols.rel AND g.col = cols.col
        LEFT JOIN base b ON b.view = cols.rel
        LEFT JOIN given gb ON gb.rel = b.tbl AND gb.col = cols.col
        LEFT JOIN given gd ON gd.rel = '*' AND gd.col = cols.col
    LOOP
        IF r.comment IS NOT NULL THEN
            EXECUTE pg_catalog.format('COMMENT ON COLUMN @extschema@.%I.%I IS %L', r.rel, r.col, r.comment);
        END IF;
    END LOOP;
END
$$;

-- Every function, by name (grant_analytics_access has its own comment above).
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT p.oid::pg_catalog.regprocedure AS f, p.prokind, t.comment
        FROM (VALUES
    ('_anomaly_pending_rows', 'Internal: the rows calculate_all_anomalies() computed, handed to its INSERT.'),
    ('_clv_pending_rows', 'Internal: the rows calculate_all_clv() computed, handed to its INSERT.'),
    ('_configure_items', 'Internal: the checks and the write behind configure_items().'),
    ('_configure_source', 'Internal: the checks and the write behind configure_source().'),
    ('_date_steps', 'Internal: the dates from from_date to to_date every step, for the sizes-over-time functions.'),
    ('_known_users', 'Internal: the parallel aggregate behind the users read (every user id and whether they had signed up by the as-of day); called by the SQL the extension generates, not by users.'),
    ('_known_users_combine', 'Internal: the combine function of the _known_users aggregate.'),
    ('_known_users_deserial', 'Internal: the deserialization function of the _known_users aggregate.'),
    ('_known_users_final', 'Internal: the final function of the _known_users aggregate.'),
    ('_known_users_serial', 'Internal: the serialization function of the _known_users aggregate.'),
    ('_known_users_sfunc', 'Internal: the transition function of the _known_users aggregate.'),
    ('_ltv_compute_user', 'Internal: one user''s LTV computed from the source tables, behind calculate_user_ltv().'),
    ('_ltv_distribution_live', 'Internal: an LTV histogram computed from ml_user_ltv, for bin counts the refresh did not store.'),
    ('_ltv_margin', 'Internal: checks a CAC margin (a positive number).'),
    ('_ltv_orders', 'Internal: the parallel aggregate behind the LTV read''s per-user order sums; called by the SQL the extension generates, not by users.'),
    ('_ltv_orders_combine', 'Internal: the combine function of the _ltv_orders aggregate.'),
    ('_ltv_orders_deserial', 'Internal: the deserialization function of the _ltv_orders aggregate.'),
    ('_ltv_orders_final', 'Internal: the final function of the _ltv_orders aggregate.'),
    ('_ltv_orders_serial', 'Internal: the serialization function of the _ltv_orders aggregate.'),
    ('_ltv_orders_sfunc', 'Internal: the transition function of the _ltv_orders aggregate.'),
    ('_ltv_pending_rows', 'Internal: the rows calculate_all_ltv() computed, handed to its INSERT.'),
    ('_ltv_require_run', 'Internal: raises a clear error when no LTV refresh has run yet.'),
    ('_ltv_users', 'Internal: the parallel aggregate behind the LTV read''s users; called by the SQL the extension generates, not by users.'),
    ('_ltv_users_combine', 'Internal: the combine function of the _ltv_users aggregate.'),
    ('_ltv_users_deserial', 'Internal: the deserialization function of the _ltv_users aggregate.'),
    ('_ltv_users_final', 'Internal: the final function of the _ltv_users aggregate.'),
    ('_ltv_users_serial', 'Internal: the serialization function of the _ltv_users aggregate.'),
    ('_ltv_users_sfunc', 'Internal: the transition function of the _ltv_users aggregate.'),
    ('_order_events', 'Internal: the parallel aggregate behind the orders read (every counted order as user, day, amount); called by the SQL the extension generates, not by users.'),
    ('_order_events_combine', 'Internal: the combine function of the _order_events aggregate.'),
    ('_order_events_deserial', 'Internal: the deserialization function of the _order_events aggregate.'),
    ('_order_events_final', 'Internal: the final function of the _order_events aggregate.'),
    ('_order_events_serial', 'Internal: the serialization function of the _order_events aggregate.'),
    ('_order_events_sfunc', 'Internal: the transition function of the _order_events aggregate.'),
    ('_order_lines', 'Internal: the parallel aggregate behind the items read (every line of the counted orders); called by the SQL the extension generates, not by users.'),
    ('_order_lines_combine', 'Internal: the combine function of the _order_lines aggregate.'),
    ('_order_lines_deserial', 'Internal: the deserialization function of the _order_lines aggregate.'),
    ('_order_lines_final', 'Internal: the final function of the _order_lines aggregate.'),
    ('_order_lines_serial', 'Internal: the serialization function of the _order_lines aggregate.'),
    ('_order_lines_sfunc', 'Internal: the transition function of the _order_lines aggregate.'),
    ('_require_pg_cron', 'Internal: raises a clear error, with how to install it, when pg_cron is not installed in this database.'),
    ('_require_dates', 'Internal: raises a clear error for a missing or reversed date range.'),
    ('_rfm_pending_rows', 'Internal: the rows calculate_all_rfm() computed, handed to its INSERT.'),
    ('_stored_fingerprints', 'Internal: the parallel aggregate behind the refreshes'' stored-row fingerprints; called by the SQL the extension generates, not by users.'),
    ('_stored_fingerprints_combine', 'Internal: the combine function of the _stored_fingerprints aggregate.'),
    ('_stored_fingerprints_deserial', 'Internal: the deserialization function of the _stored_fingerprints aggregate.'),
    ('_stored_fingerprints_final', 'Internal: the final function of the _stored_fingerprints aggregate.'),
    ('_stored_fingerprints_serial', 'Internal: the serialization function of the _stored_fingerprints aggregate.'),
    ('_stored_fingerprints_sfunc', 'Internal: the transition function of the _stored_fingerprints aggregate.'),
    ('anomaly_summary', 'Per judged week of ml_user_anomalies_weekly: users judged, anomalies, users flagged for short history, score statistics, and how often each trigger fired.'),
    ('calculate_all_anomalies', 'Judges every user''s last weeks complete weeks before as_of (default today) and replaces the contents of ml_user_anomalies_weekly with the findings in one transaction.'),
    ('calculate_all_churn', 'Scores every customer (a successful order by the as-of day) with a churn model and replaces ml_churn_scores in one transaction.'),
    ('calculate_all_clusters', 'Replaces the contents of ml_user_clusters with kmeans_assign(model_name, as_of), atomically. Returns the number of users written.'),
    ('calculate_all_clv', 'Scores every customer as of as_of (default today) with a purchase model and, optionally, a spend model, and replaces the contents of ml_user_clv with the results in one transaction. Returns what it did, with the time of each phase.'),
    ('calculate_all_ltv', 'Recomputes every user''s LTV as of as_of (default: today in the configured time zone) and replaces the contents of ml_user_ltv in one transaction, writing only the stored rows that changed: readers keep seeing the previous contents until it commits, and an error or a cancel leaves them untouched. Returns the number of users in the results.'),
    ('calculate_all_purchase', 'Scores every customer with a purchase model and replaces ml_purchase_scores.'),
    ('calculate_all_recommendations', 'Writes every customer''s top k (customers with a counted order line up to as_of, default today) into ml_user_recommendations, replacing its contents in one transaction.'),
    ('calculate_all_rfm', 'Recomputes every user''s RFM scores and segment as of as_of (default: today) and replaces the contents of ml_user_rfm in one transaction, rewriting only the stored rows that changed, with a row in ml_rfm_runs holding the breakpoints. Returns the number of users in the results.'),
    ('calculate_user_ltv', 'One user''s LTV row (revenue and orders over 3, 6, 12 months and lifetime, averages, dates, segment), computed from the source tables now and written nowhere.'),
    ('calculate_user_rfm', 'One user''s R, F and M as of as_of (default: today), scored against the breakpoints of the latest calculate_all_rfm run (and with its monetary option), so no other user is read. No row when the user does not exist or was left out.'),
    ('cda_analytics_version', 'The version of the loaded library and of the installed catalog (pg_extension.extversion); they differ after a new library is installed until ALTER EXTENSION cda_analytics UPDATE runs.'),
    ('schedule_analytics_jobs', 'Installs the recommended nightly schedule in pg_cron in one call (jobs named cda-*, replaced when called again): LTV and RFM every night at at_hour, clusters, CLV, churn, purchase scores and recommendations for the models named, anomalies every Monday, and optionally the daily digest; each as of the day that just ended in the configured time zone.'),
    ('unschedule_analytics_jobs', 'Removes the pg_cron jobs schedule_analytics_jobs() installed (cda-* of this database and role); returns their names.'),
    ('queue_digest', 'Queues the daily digest in cda_notifications for the HTTP server to send: the LTV refresh, customers newly at high churn risk, new anomalies and failed cda-* pg_cron jobs, only what is new since the previous digest, at most 4,096 characters. Returns its id, or NULL when nothing is new.'),
    ('cda_configuration', 'The configuration in effect, as (setting, value) rows.'),
    ('churn_features', 'The features of every customer (or one) at as_of, from the orders up to it only, as the models see them before log1p and scaling. eligible uses the default rules (first order 30 days before, an order in the last 180 days). p_alive and expected_purchases (over 60 days) come from btyd_model fitted on the data up to as_of; NULL with ''none'' or when it cannot be fitted.'),
    ('churn_high_risk', 'The customers most at risk in the latest calculate_all_churn(): probability at least threshold, highest first; only those still active by default (include_lapsed adds the customers who lapsed long ago).'),
    ('churn_labels', 'The labelled rows of a training run: every eligible customer at every snapshot, with its split (''training'' or ''validation'') and label.'),
    ('churn_summary', 'Customers per churn risk band in the latest calculate_all_churn().'),
    ('churn_train', 'Trains a churn (or purchase) model on weekly snapshots up to as_of and stores it as model_name: the last validation_weeks snapshots validate, earlier ones whose label ends by the first validation day train. Returns each scorer''s validation metrics; the one kept has chosen.'),
    ('churn_user', 'One customer''s prediction, computed now with a stored model (churn or purchase).'),
    ('cluster_migration', 'How users moved between the clusters of a stored K-means model from one date to another; both dates are assigned to the same stored centroids. ''(no orders)'' stands for users without a successful order by a date.'),
    ('cluster_sizes', 'Users per cluster of a stored K-means model on each date from from_date to to_date, every step.'),
    ('clv_expected_purchases_new', 'Expected repeat purchases of a newly acquired customer over horizon (in horizon_unit).'),
    ('clv_expected_spend', 'Gamma-Gamma''s expected spend per purchase for a customer with frequency repeat purchases of mean value monetary_value (the population mean when frequency is 0).'),
    ('clv_fit', 'Fits model on the customers'' summaries at calibration_end (default today) and stores it as model_name, replacing a model of that name. Returns the parameters and their standard errors. A fit that does not converge to a proper maximum is an error and stores nothing.'),
    ('clv_holdout_evaluation', 'Holdout evaluation of a purchase model: customers of its calibration period binned by calibration frequency (0 .. max_frequency − 1, then max_frequency and more), with actual and predicted purchases in (calibration end, holdout_end]; a last row ''all'' with the totals, the mean absolute error and the root mean squared error per customer.'),
    ('clv_predict', 'Predictions for a summary the caller has: probability alive and expected repeat purchases in the next horizon, with recency, T and the horizon all in time_unit.'),
    ('clv_purchase_probabilities', 'P(exactly n repeat purchases in the next horizon) for n = 0..max_n, for one user as of a date (BG/NBD and MBG/NBD).'),
    ('clv_summary', 'Customer summaries: frequency (repeat purchase days), recency and T in time_unit, mean repeat spend, and with holdout_end, each customer''s purchase days and spend after the calibration end.'),
    ('clv_user', 'One user''s predictions from their purchases up to as_of (default today): the summary, probability alive, expected purchases in the next horizon (in horizon_unit), the chance of none, and with a spend model, expected spend per purchase and the CLV over the horizon''s months.'),
    ('cohort_retention', 'Retention by acquisition cohort: for each cohort (the customers whose first successful order fell in a period, or with retention_type => ''recurring'' everyone active in it) and each period number from 0 to max_periods that has started by as_of: the customers active in it, their orders and revenue, and the ratios. Zero activity is a row of zeros.'),
    ('cohort_retention_summary', 'The mean retention per period number over the cohorts whose cell is complete and which are not left-censored (include_censored takes those too): weighted by cohort size (Σ active / Σ size) and simple (the mean of the cohorts'' retentions).'),
    ('configure_items', 'Points the extension at the shop''s order items and products (tables and columns, and optionally a boolean column marking what is not a product), checked against the catalog and the caller''s privileges before it is stored. NULL keeps a setting. Returns the settings in effect.'),
    ('configure_ltv', 'Changes the LTV segment thresholds (currency units, inclusive lower bounds) and the margin used for the recommended maximum CAC; NULL arguments keep their current value.'),
    ('configure_source', 'Points the extension at the shop''s users and orders (tables, columns, successful statuses, time zone), checked against the catalog and the caller''s privileges before it is stored. NULL keeps a setting. Returns the settings in effect.'),
    ('elasticity_cells', 'The cells behind an estimate: for product_id (or every product of category), each period with sales from from_date through to_date (default today), its units, the price buyers faced (price as in price_elasticity) and its orders: the points of a price × units plot.'),
    ('elasticity_scenario', 'What a relative price change dp (-0.15 for -15%) does under elasticity beta in the log-log model, exactly: units (1 + dp)^beta - 1 and revenue (1 + dp)^(1 + beta) - 1, with the range over [ci_low, ci_high]. Usable only when the estimate''s reliability is ''ok''.'),
    ('evaluate_recommenders', 'Trains each of models on the order lines before cutoff and measures it on the lines of [cutoff, cutoff + horizon): hit rate, precision, recall, NDCG and MAP at each k of ks, and catalogue coverage, in two modes (all: repeat purchases count; new: only products new to the customer, whose own products are never recommended). Customers are evaluated when they bought in both windows; buyers with no history are counted in cold_start_buyers.'),
    ('get_ltv_insights', 'Figures for acquisition decisions from the latest LTV refresh: the recommended maximum customer acquisition cost (average 6-month LTV × cac_margin), the 12-month over 6-month revenue growth of the customers whose 12 months elapsed, and the share of users who bought.'),
    ('get_ltv_summary', 'Average, median, 95th percentile, buyers and measured users per horizon (3m, 6m, 12m, lifetime) of the latest calculate_all_ltv(); a horizon covers the users whose horizon had fully elapsed at the as-of date.'),
    ('item_configuration', 'The item configuration in effect, as (setting, value) rows.'),
    ('kmeans_assign', 'Assigns every user of the snapshot at as_of (default: today) to the nearest cluster of the latest stored version of model_name, with that model''s scaling: no refit, so clusters keep their numbers and names from date to date.'),
    ('kmeans_fit', 'Fits K-means on the snapshot at as_of (default: today) and stores it as the next version of model_name. k NULL chooses k in 2..10 by silhouette. Same data and seed, same model. Returns the clusters, in their fixed order, with size and centroid in feature units.'),
    ('latest_anomalies', 'The anomalies of the latest judged week in ml_user_anomalies_weekly, highest score first.'),
    ('ltv_distribution', 'The histogram of one LTV metric over the users of the latest refresh: stored by the refresh for the common bin counts, else computed.'),
    ('ltv_segments', 'Users, share and revenue per value segment (by lifetime revenue) of the latest LTV refresh, with the thresholds that assigned them; empty segments are listed with 0.'),
    ('order_items_report', 'What the items read of the counted orders up to as_of (default today) finds: the lines that count, the lines left out by why, and the products, categories, customers and orders of the counted lines.'),
    ('orders_read_plan', 'How a whole-run refresh of LTV or RFM reads the configured orders: with the extension''s own parallel scan, or with an aggregate query and why. Runs of fewer than 16,384 users, and servers without parallel workers, always read with the aggregate query.'),
    ('price_elasticity', 'Price elasticities from what customers paid: per level (product, category or all), over periods (week or month) from from_date through to_date (default today), with the cell price defined by price (base: the commonest price of small-quantity lines; average: revenue / units). Category and all pool their products with product and period fixed effects and cluster by product; a product alone is fitted with a trend (its period effects cannot be told from its price). Each row has its interval, sizes, price variation and a reliability verdict; only ok is usable.'),
    ('recommend', 'The k products model_name recommends to user_id now, from everything they have bought (a customer with no history gets the most popular products), best first, with the products of theirs that led to each (because_of, empty for popularity). exclude_purchased leaves out what they already bought.'),
    ('reset_configuration', 'Forgets the stored configuration, the items'' too: the defaults apply again.'),
    ('rfm_segment', 'Every user''s R, F and M as of as_of (default: today in the configured time zone), scored 1-5 against each other, with the named segment; users without a successful order come last, with segment ''No Orders'' and no scores. Writes nothing.'),
    ('rfm_segment_migration', 'How users moved between RFM segments from one date to another, each date scored on its own quintiles. ''(not registered)'' stands for users who had not signed up on a date.'),
    ('rfm_segment_name', 'The segment that R, F and M scores fall in under the map in effect (first matching rule), for re-labelling stored scores or checking a custom map.'),
    ('rfm_segment_rules', 'The segment map in effect: the rows of rfm_segment_map, or the default map when it is empty.'),
    ('rfm_segment_sizes', 'Users per RFM segment on each date from from_date to to_date, every step (each date costs one read of the orders).'),
    ('rfm_segment_summary', 'Per segment of the latest calculate_all_rfm(): users, share of users, average R, F and M scores, revenue and share of revenue.'),
    ('similar_products', 'The k products most similar to product_id in model_name (item-kNN''s similarities, or EASE''s largest weights), best first; none when the model does not know the product.'),
    ('train_recommender', 'Trains a recommender on every counted order line up to as_of (default today) and stores it as model_name, replacing a model of that name: its products with their popularity, and each product''s neighbours (item-kNN''s similarities, or the largest weights of EASE''s item matrix). algorithm is one of evaluate_recommenders()''s models; default is EASE plus hybrid_weight × the customer''s own orders of each product.'),
    ('user_anomaly_history', 'One user''s judged weeks (the last weeks complete ones), computed on the fly with the given rules: the statistics, the score, the triggers that fired and whether the history sufficed.'),
    ('user_behavior_weekly', 'One user''s weeks up to the last complete week before as_of (default today), zero weeks included, from their first active week or weeks weeks back, whichever is later. Categories are the distinct product categories of the week, NULL without order_items and products.'),
    ('user_features', 'Every user with a successful order up to as_of (default: today), with the snapshot features used for clustering, from data up to that day only. categories_180d is NULL where the shop has no order_items and products tables.')
        ) AS t(name, comment)
        JOIN pg_catalog.pg_proc p ON p.proname = t.name
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid AND d.deptype = 'e'
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'cda_analytics'
    LOOP
        EXECUTE pg_catalog.format('COMMENT ON %s %s IS %L',
            CASE r.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, r.f, r.comment);
    END LOOP;
END
$$;

-- The roles that had access keep it, now to the new tables, views and functions as well (the
-- view ml_recommender_neighbors among them; the grants on the table it replaces went with it):
-- each role with a direct grant on the LTV runs table is granted again at its level (INSERT there
-- is an operator's, SELECT alone an analyst's).
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT a.grantee::pg_catalog.regrole AS role_name,
               CASE WHEN pg_catalog.bool_or(a.privilege_type = 'INSERT') THEN 'operator' ELSE 'analyst' END AS access
        FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
        WHERE c.oid = '@extschema@.ml_ltv_runs'::pg_catalog.regclass
          AND a.grantee <> 0 AND a.grantee <> c.relowner
        GROUP BY a.grantee
        ORDER BY 1
    LOOP
        PERFORM @extschema@.grant_analytics_access(r.role_name, r.access);
    END LOOP;
END
$$;
