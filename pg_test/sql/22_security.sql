-- The security review, one check per item: no SECURITY DEFINER; a pinned search_path on every
-- function that runs SQL; text arguments bound or quoted, never spliced; configuration and
-- scheduling only for the operator, never for an analyst.
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'cda_analytics'),
     fns AS (SELECT p.* FROM pg_depend d JOIN ext ON d.refobjid = ext.oid JOIN pg_proc p ON p.oid = d.objid
             WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e')
SELECT count(*) AS functions, count(*) FILTER (WHERE prosecdef) AS security_definer FROM fns;

-- Without a pinned search_path: only the aggregates and the C functions that run no SQL (the
-- aggregates' support functions, which PostgreSQL calls with raw values, and the row sources
-- that hand rows over from memory).
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'cda_analytics'),
     fns AS (SELECT p.* FROM pg_depend d JOIN ext ON d.refobjid = ext.oid JOIN pg_proc p ON p.oid = d.objid
             WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'),
     support AS (SELECT unnest(ARRAY[aggtransfn, aggfinalfn, aggcombinefn, aggserialfn, aggdeserialfn])::oid AS oid FROM pg_aggregate)
SELECT f.proname, l.lanname, f.prokind = 'a' AS aggregate, f.oid IN (SELECT oid FROM support) AS aggregate_support
FROM fns f JOIN pg_language l ON l.oid = f.prolang
WHERE NOT coalesce(f.proconfig @> '{"search_path=pg_catalog, pg_temp"}', false)
  AND NOT (f.prokind = 'a' OR f.oid IN (SELECT oid FROM support))
ORDER BY 1;

-- Text arguments are data: names with quotes and SQL in them are stored and looked up as they
-- are, and nothing else runs.
CREATE TABLE sec_canary (x int);
CREATE SCHEMA sec_fx;
CREATE TABLE sec_fx.users (user_id bigint PRIMARY KEY, registered_at timestamptz NOT NULL);
CREATE TABLE sec_fx.orders (order_id bigint PRIMARY KEY, user_id bigint, created_at timestamptz,
                            status text, total_amount numeric(12,2));
CREATE TABLE sec_fx.items (order_id bigint, product_id bigint, quantity int, unit_price numeric);
CREATE TABLE sec_fx.products (product_id bigint, category text);
SELECT * FROM configure_source(users_table => 'sec_fx.users', orders_table => 'sec_fx.orders',
                               status_column => 'status"; DROP TABLE sec_canary; --');
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'sec_fx.users', orders_table => 'sec_fx.orders');
SELECT * FROM configure_items(order_items_table => 'sec_fx.items', products_table => 'sec_fx.products',
                              quantity_column => 'quantity); DROP TABLE sec_canary; --');
SELECT * FROM recommend(1, 5, 'x''; DROP TABLE sec_canary; --');
SELECT * FROM churn_user(1, 'x''); DROP TABLE sec_canary; --');
SELECT queue_digest('http://x''; DROP TABLE sec_canary; --') IS NULL AS nothing_new;
DO $$
BEGIN
    PERFORM schedule_analytics_jobs(cluster_model => 'x''; DROP TABLE sec_canary; --');
EXCEPTION WHEN undefined_object THEN
    RAISE NOTICE 'refused: %', replace(SQLERRM, current_database(), '<this database>');
END
$$;
SELECT count(*) AS canary_alive FROM sec_canary;
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM reset_configuration();
RESET client_min_messages;

-- Configuration and scheduling are the operator's: an analyst may call none of them.
CREATE ROLE cda_analyst22;
SET client_min_messages = warning;
SELECT count(*) > 0 AS granted FROM grant_analytics_access('cda_analyst22', 'analyst');
RESET client_min_messages;
SELECT p.proname, has_function_privilege('cda_analyst22', p.oid, 'EXECUTE') AS analyst_may_call
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'cda_analytics'
WHERE p.proname IN ('configure_source', 'configure_items', 'configure_ltv', 'reset_configuration',
                    'schedule_analytics_jobs', 'unschedule_analytics_jobs', 'queue_digest',
                    'grant_analytics_access', 'cda_configuration', 'item_configuration')
ORDER BY 1;
SELECT has_table_privilege('cda_analyst22', 'cda_config', 'INSERT') AS analyst_may_write_config,
       has_table_privilege('cda_analyst22', 'rfm_segment_map', 'INSERT') AS analyst_may_edit_segment_map,
       has_table_privilege('cda_analyst22', 'cda_notifications', 'INSERT') AS analyst_may_queue;
SET client_min_messages = warning;
SELECT count(*) >= 0 AS revoked FROM grant_analytics_access('cda_analyst22', 'none');
RESET client_min_messages;
DROP ROLE cda_analyst22;
DROP TABLE sec_canary;
DROP SCHEMA sec_fx CASCADE;
