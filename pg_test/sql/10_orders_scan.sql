-- The orders read of a whole run (16,384 users or more) goes through the extension's own
-- parallel scan where the source allows it, and through an aggregate query otherwise. Both
-- must read every kind of row the same way: here 20,000 users and their orders, with every kind
-- of bad row, are read both ways and the results compared.
\set SHOW_CONTEXT never
CREATE SCHEMA scan;
CREATE TABLE scan.users (user_id bigint, registered_at timestamptz);
-- An integer user id, an unconstrained numeric amount (rounded to 2 places, counted).
CREATE TABLE scan.orders (order_id bigint, user_id integer, created_at timestamptz, status text,
    total_amount numeric);
INSERT INTO scan.users
SELECT i, timestamptz '2023-01-01' + (i % 500) * interval '1 day' FROM generate_series(1, 20000) i;
INSERT INTO scan.orders
SELECT i, 1 + (i::bigint * 7919) % 20000,
       timestamptz '2023-01-01' + ((i::bigint * 104729) % 700) * interval '1 day' + (i % 86400) * interval '1 second',
       (ARRAY['paid', 'shipped', 'completed', 'cancelled', 'delivered to the customer', 'it''s paid',
              'pending'])[1 + i % 7],
       round(((i * 31) % 50000) / 100.0 + 1, 2)
FROM generate_series(1, 120000) i;
-- One row of every kind the reads must skip, count or round.
INSERT INTO scan.orders VALUES
    (200001, 1, '2024-03-01', NULL, 10),              -- NULL status: counted as skipped
    (200002, 2, '2024-03-01', 'paid', NULL),          -- NULL amount
    (200003, 3, '2024-03-01', 'paid', -5),            -- negative amount
    (200004, NULL, '2024-03-01', 'paid', 5),          -- NULL user
    (200005, 999999, '2024-03-01', 'paid', 5),        -- unknown user
    (200006, 4, NULL, 'paid', 5),                     -- NULL date
    (200007, 5, 'infinity', 'paid', 5),               -- infinite date
    (200008, 6, '2022-06-01', 'paid', 7),             -- before signup: lifetime only
    (200009, 7, '2030-01-01', 'paid', 5),             -- after the as-of date
    (200010, 8, '2024-03-01', 'paid', 1.005),         -- more decimals: rounded
    (200011, 9, '2024-03-01', 'PAID', 5),             -- not a successful status (case)
    (200012, 10, '2024-03-01', 'paid ', 5),           -- nor with a trailing blank
    (200013, 11, '2024-03-01', 'paid', -0.004);       -- negative, though 0.00 at the scale
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'scan.users',
    orders_table => 'scan.orders',
    successful_statuses => ARRAY['paid', 'shipped', 'completed', 'delivered to the customer',
                                 'it''s paid']);
RESET client_min_messages;
SELECT orders_read_plan();

-- What a run read, to compare runs by.
CREATE FUNCTION pg_temp.run_counts() RETURNS TABLE (orders_read bigint, orders_counted bigint,
    before_signup bigint, null_status bigint, null_user bigint, unknown_user bigint,
    null_date bigint, after_as_of bigint, null_amount bigint, negative_amount bigint,
    rounded bigint, rows_written bigint)
LANGUAGE sql AS $$
    SELECT orders_read, orders_counted, orders_before_signup, orders_skipped_null_status,
           orders_skipped_null_user, orders_skipped_unknown_user, orders_skipped_null_date,
           orders_skipped_after_as_of, orders_skipped_null_amount, orders_skipped_negative_amount,
           amounts_rounded, rows_written
    FROM ltv_last_run
$$;

-- The scan with two workers (the table is small, so the size that earns a worker is lowered)...
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT calculate_all_ltv('2024-06-30');
SELECT * FROM pg_temp.run_counts();
CREATE TEMP TABLE by_scan AS SELECT * FROM ml_user_ltv;
ALTER TABLE by_scan DROP COLUMN calculated_at;
-- ...equals the aggregate query: a refresh through it finds every stored row unchanged, and the
-- rows and counts are the same.
SET cda_analytics.table_scans = off;
SELECT orders_read_plan();
SELECT calculate_all_ltv('2024-06-30');
SELECT * FROM pg_temp.run_counts();
CREATE TEMP TABLE by_query AS SELECT * FROM ml_user_ltv;
ALTER TABLE by_query DROP COLUMN calculated_at;
SELECT count(*) AS users, (SELECT count(*) FROM (
    (SELECT * FROM by_scan EXCEPT SELECT * FROM by_query)
    UNION ALL (SELECT * FROM by_query EXCEPT SELECT * FROM by_scan)) d) AS differing_rows
FROM by_scan;
-- The leader scans alone when no worker can start; the rows are still the same.
RESET cda_analytics.table_scans;
SET max_parallel_workers = 0;
SELECT calculate_all_ltv('2024-06-30');
SELECT rows_written FROM pg_temp.run_counts();
RESET max_parallel_workers;
-- A day earlier the same way with and without the scan: the second refresh rewrites nothing.
SET min_parallel_table_scan_size = 0;
SELECT calculate_all_ltv('2024-06-29');
SET cda_analytics.table_scans = off;
SELECT calculate_all_ltv('2024-06-29');
SELECT rows_written FROM pg_temp.run_counts();
-- RFM reads the same way.
RESET cda_analytics.table_scans;
SELECT calculate_all_rfm('2024-06-30');
SET cda_analytics.table_scans = off;
SELECT calculate_all_rfm('2024-06-30');
SELECT rows_written FROM ml_rfm_runs ORDER BY run_id DESC LIMIT 1;
RESET cda_analytics.table_scans;

-- Orders written earlier in the same transaction are read by the scan's workers too.
BEGIN;
INSERT INTO scan.orders VALUES (300001, 11, '2024-05-01', 'paid', 1000);
SELECT calculate_all_ltv('2024-06-30');
SELECT l.lifetime_revenue = (SELECT sum(round(total_amount, 2)) FROM scan.orders o
                             WHERE o.user_id = 11 AND o.created_at < '2024-07-01'
                               AND o.status IN ('paid', 'shipped', 'completed',
                                                'delivered to the customer', 'it''s paid')
                               AND o.total_amount >= 0) AS sees_own_insert
FROM ml_user_ltv l WHERE l.user_id = 11;
ROLLBACK;

-- An amount that is not a number is the same error either way.
INSERT INTO scan.orders VALUES (400001, 12, '2024-03-01', 'paid', 'NaN');
SELECT calculate_all_ltv('2024-06-30');
\echo :LAST_ERROR_SQLSTATE
SET cda_analytics.table_scans = off;
SELECT calculate_all_ltv('2024-06-30');
\echo :LAST_ERROR_SQLSTATE
RESET cda_analytics.table_scans;
DELETE FROM scan.orders WHERE order_id = 400001;

-- Values the scan cannot read in place go by a slower path to the same result: statuses
-- stored compressed or out of line...
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(
    successful_statuses => ARRAY['paid', 'shipped', 'completed', 'delivered to the customer',
                                 'it''s paid', repeat('long paid ', 300)]);
RESET client_min_messages;
INSERT INTO scan.orders VALUES
    (500001, 13, '2024-03-01', repeat('long paid ', 300), 40),  -- compressed in the row
    (500002, 14, '2024-03-01', repeat('long gone ', 300), 50);  -- the same, not successful
ALTER TABLE scan.orders ALTER COLUMN status SET STORAGE EXTERNAL;
INSERT INTO scan.orders VALUES (500003, 15, '2024-03-01', repeat('long paid ', 300), 60);  -- out of line
SELECT order_id, pg_column_size(status) AS stored_bytes FROM scan.orders
WHERE order_id > 500000 ORDER BY order_id;
SELECT calculate_all_ltv('2024-06-30');
SELECT * FROM pg_temp.run_counts();
SET cda_analytics.table_scans = off;
SELECT calculate_all_ltv('2024-06-30');
SELECT * FROM pg_temp.run_counts();
RESET cda_analytics.table_scans;
SELECT user_id, orders_lifetime, lifetime_revenue FROM ml_user_ltv
WHERE user_id IN (13, 14, 15) ORDER BY user_id;
DELETE FROM scan.orders WHERE order_id > 500000;
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(
    successful_statuses => ARRAY['paid', 'shipped', 'completed', 'delivered to the customer',
                                 'it''s paid']);
RESET client_min_messages;
-- ...and an amount column added after most rows were written, whose default PostgreSQL fills in.
CREATE TABLE scan.orders_late AS SELECT order_id, user_id, created_at, status FROM scan.orders;
ALTER TABLE scan.orders_late ADD COLUMN total_amount numeric DEFAULT 12.5;
INSERT INTO scan.orders_late
SELECT order_id + 1000000, user_id, created_at, status, 3.25 FROM scan.orders WHERE order_id % 10 = 0;
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(orders_table => 'scan.orders_late');
RESET client_min_messages;
SELECT orders_read_plan();
SELECT calculate_all_ltv('2024-06-30');
SELECT * FROM pg_temp.run_counts();
SET cda_analytics.table_scans = off;
SELECT calculate_all_ltv('2024-06-30');
SELECT * FROM pg_temp.run_counts();
RESET cda_analytics.table_scans;
SELECT sum(lifetime_revenue) = (SELECT sum(total_amount) FROM scan.orders_late o
                                JOIN scan.users u USING (user_id)
                                WHERE o.created_at < '2024-07-01 00:00+00' AND o.created_at > '-infinity'
                                  AND o.status IN ('paid', 'shipped', 'completed',
                                                   'delivered to the customer', 'it''s paid'))
       AS revenue_matches_sql
FROM ml_user_ltv;
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(orders_table => 'scan.orders');
RESET client_min_messages;

-- The users and the stored rows' fingerprints are read with scans of their own too, and with
-- aggregate queries where those may not read them (here, row security on the users and on the
-- results table, while the orders are still scanned): either way a refresh of the same day
-- finds nothing to rewrite.
SET client_min_messages = warning;
SELECT calculate_all_ltv('2024-06-29');
RESET client_min_messages;
ALTER TABLE ml_user_ltv_rows ENABLE ROW LEVEL SECURITY;
ALTER TABLE scan.users ENABLE ROW LEVEL SECURITY;
SET client_min_messages = warning;
SELECT calculate_all_ltv('2024-06-29');
RESET client_min_messages;
SELECT rows_written FROM pg_temp.run_counts();
ALTER TABLE ml_user_ltv_rows DISABLE ROW LEVEL SECURITY;
ALTER TABLE scan.users DISABLE ROW LEVEL SECURITY;
-- The users scan reads an integer id and a timestamp without time zone (the UTC wall clock) to
-- the same users and signup days.
CREATE TABLE scan.users_int AS
SELECT user_id::integer AS user_id, registered_at AT TIME ZONE 'UTC' AS registered_at FROM scan.users;
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'scan.users_int');
SELECT calculate_all_ltv('2024-06-29');
RESET client_min_messages;
SELECT rows_written FROM pg_temp.run_counts();
-- A signup column added after most users were written: PostgreSQL fills in its default for the
-- earlier rows, which the users scan reads on its slow path. The scan reads every user the
-- aggregate query reads, for LTV and RFM alike.
CREATE TABLE scan.users_late AS SELECT user_id FROM scan.users WHERE user_id <= 19000;
ALTER TABLE scan.users_late ADD COLUMN registered_at timestamptz DEFAULT '2023-01-01';
INSERT INTO scan.users_late SELECT user_id, registered_at FROM scan.users WHERE user_id > 19000;
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'scan.users_late');
SELECT calculate_all_ltv('2024-06-29');
SELECT calculate_all_rfm('2024-06-29');
RESET client_min_messages;
SELECT users, users_read FROM ltv_last_run;
SET cda_analytics.table_scans = off;
SET client_min_messages = warning;
SELECT calculate_all_ltv('2024-06-29');
SELECT calculate_all_rfm('2024-06-29');
RESET client_min_messages;
SELECT users, users_read, rows_written FROM ltv_last_run;
SELECT rows_written FROM ml_rfm_runs ORDER BY run_id DESC LIMIT 1;
RESET cda_analytics.table_scans;
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'scan.users');
SELECT calculate_all_ltv('2024-06-29');
RESET client_min_messages;

-- Sources the scan does not serve are read by the aggregate query, which says why.
ALTER TABLE scan.orders ENABLE ROW LEVEL SECURITY;
SELECT orders_read_plan();
ALTER TABLE scan.orders DISABLE ROW LEVEL SECURITY;
CREATE VIEW scan.orders_view AS SELECT * FROM scan.orders;
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(orders_table => 'scan.orders_view');
RESET client_min_messages;
SELECT orders_read_plan();
-- The view reads the same rows as the table did.
SELECT calculate_all_ltv('2024-06-29');
SELECT rows_written FROM pg_temp.run_counts();
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(orders_table => 'scan.orders',
    time_zone => 'Europe/Paris');
RESET client_min_messages;
SELECT orders_read_plan();
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(time_zone => 'UTC');
RESET client_min_messages;
-- A temporary table's rows are in this session's own buffers, out of the workers' reach.
CREATE TEMP TABLE orders_here AS SELECT * FROM scan.orders;
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(orders_table => 'pg_temp.orders_here');
RESET client_min_messages;
SELECT regexp_replace(orders_read_plan(), 'pg_temp_[0-9]+', 'pg_temp_N') AS orders_read_plan;
-- (Its notice would name this session's temporary schema.)
SET client_min_messages = warning;
SELECT calculate_all_ltv('2024-06-29');
RESET client_min_messages;
SELECT rows_written FROM pg_temp.run_counts();
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(orders_table => 'scan.orders');
RESET client_min_messages;
-- A table another engine manages looks like a plain heap table in the catalog, but its heap is
-- not where its rows are: the own scans leave it to the aggregate query, which the engine's
-- hooks serve. Here stand-ins for the catalogs of Citus and TimescaleDB.
SET allow_system_table_mods = on;
CREATE TABLE pg_catalog.pg_dist_partition (logicalrelid regclass NOT NULL);
SELECT orders_read_plan();
INSERT INTO pg_catalog.pg_dist_partition VALUES ('scan.orders');
SELECT orders_read_plan();
DROP TABLE pg_catalog.pg_dist_partition;
RESET allow_system_table_mods;
CREATE SCHEMA _timescaledb_catalog;
CREATE TABLE _timescaledb_catalog.hypertable (schema_name name, table_name name);
INSERT INTO _timescaledb_catalog.hypertable VALUES ('scan', 'orders');
SELECT orders_read_plan();
SET client_min_messages = warning;
SELECT calculate_all_ltv('2024-06-29');
RESET client_min_messages;
SELECT rows_written FROM pg_temp.run_counts();
DROP SCHEMA _timescaledb_catalog CASCADE;
SELECT orders_read_plan();
-- (PostgreSQL clears the mark of child tables lazily, so this one comes last.)
CREATE TABLE scan.orders_archive () INHERITS (scan.orders);
SELECT orders_read_plan();

-- The extension's settings are reserved: a misspelt one is an error, not a silent no-op.
SET cda_analytics.table_scan = off;
SHOW cda_analytics.table_scans;

RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT count(*) AS settings FROM reset_configuration();
DROP SCHEMA scan CASCADE;
