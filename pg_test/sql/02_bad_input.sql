-- Bad input: each case gets a clear error (SQLSTATE shown after it) or a documented handling that
-- the run reports. Never a crash.
\set SHOW_CONTEXT never
CREATE SCHEMA bad;
CREATE TABLE bad.users (id bigint, signed_up timestamptz);
CREATE TABLE bad.orders (uid bigint, at timestamptz, state text, amount numeric);

-- Missing tables and columns are errors that name them, when configured...
SELECT * FROM configure_source(users_table => 'bad.nope');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM configure_source(users_table => 'bad.users');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM configure_source(users_table => 'bad.users', user_id_column => 'id',
    registered_at_column => 'signed_up', orders_table => 'bad.orders', order_user_id_column => 'uid',
    order_date_column => 'at', status_column => 'state', amount_column => 'amt');
\echo :LAST_ERROR_SQLSTATE
-- ...and a column of the wrong type, an empty status set, an unknown time zone.
SELECT * FROM configure_source(users_table => 'bad.users', user_id_column => 'signed_up');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM configure_source(users_table => 'bad.users', user_id_column => 'id',
    registered_at_column => 'signed_up', orders_table => 'bad.orders', order_user_id_column => 'uid',
    order_date_column => 'at', status_column => 'state', amount_column => 'amount',
    successful_statuses => '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM configure_source(users_table => 'bad.users', user_id_column => 'id',
    registered_at_column => 'signed_up', orders_table => 'bad.orders', order_user_id_column => 'uid',
    order_date_column => 'at', status_column => 'state', amount_column => 'amount',
    time_zone => 'Mars/Olympus_Mons');
\echo :LAST_ERROR_SQLSTATE
-- A failed configure_source stores nothing: still the defaults.
SELECT value FROM cda_configuration() WHERE setting = 'users_table';

SELECT * FROM configure_source(users_table => 'bad.users', user_id_column => 'id',
    registered_at_column => 'signed_up', orders_table => 'bad.orders', order_user_id_column => 'uid',
    order_date_column => 'at', status_column => 'state', amount_column => 'amount',
    successful_statuses => ARRAY['ok']);

-- Empty tables: 0 users, an empty results table, a summary with no averages.
SELECT calculate_all_ltv('2024-01-01');
SELECT count(*) FROM ml_user_ltv;
SELECT * FROM get_ltv_summary();
SELECT * FROM ltv_distribution();

-- Every kind of bad row, each counted in the NOTICE and in the run record.
INSERT INTO bad.users VALUES (1, '2023-01-01'), (2, NULL), (NULL, '2023-01-01'), (3, '2025-01-01');
INSERT INTO bad.orders VALUES
    (1, '2023-02-01', 'ok', 10.00),       -- counted
    (1, '2023-02-02', 'ok', NULL),        -- NULL amount
    (1, '2023-02-03', 'ok', -5.00),       -- negative amount (a refund is not an order)
    (1, '2023-02-04', NULL, 7.00),        -- NULL status
    (1, '2023-02-05', 'refunded', 7.00),  -- another status: not a successful order, not read
    (1, NULL, 'ok', 7.00),                -- no date
    (1, '2024-06-01', 'ok', 7.00),        -- after the as-of date
    (1, '2022-12-31', 'ok', 1.005),       -- before signup; three decimals, rounded to 1.01
    (9, '2023-02-01', 'ok', 7.00),        -- user 9 does not exist
    (NULL, '2023-02-01', 'ok', 7.00),     -- no user
    (2, '2023-02-01', 'ok', 7.00),        -- user 2 has no signup date: left out with the user
    (3, '2023-02-01', 'ok', 7.00);        -- user 3 signed up after the as-of date: left out
SELECT calculate_all_ltv('2024-01-01');
SELECT user_id, lifetime_revenue, orders_lifetime, revenue_3m, orders_before_signup FROM ml_user_ltv;
SELECT users_read, users_skipped_null_id, users_skipped_null_signup, users_skipped_signup_after_as_of,
       orders_read, orders_counted, orders_skipped_null_status, orders_skipped_null_user,
       orders_skipped_unknown_user, orders_skipped_null_date, orders_skipped_after_as_of,
       orders_skipped_null_amount, orders_skipped_negative_amount, orders_skipped_user_left_out,
       amounts_rounded, orders_before_signup
FROM ltv_last_run;

-- A NaN amount has no sensible value: an error naming it, and the previous results stay.
INSERT INTO bad.orders VALUES (1, '2023-03-01', 'ok', 'NaN');
SELECT calculate_all_ltv('2024-01-01');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM bad.orders WHERE amount = 'NaN';
SELECT count(*) AS rows_kept FROM ml_user_ltv;

-- Duplicate user ids make LTV ambiguous: an error naming the id.
INSERT INTO bad.users VALUES (1, '2023-05-05');
SELECT calculate_all_ltv('2024-01-01');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM bad.users WHERE signed_up = '2023-05-05';

-- A table dropped after configuration: an error naming it, with a hint.
ALTER TABLE bad.orders RENAME TO orders_old;
SELECT calculate_all_ltv('2024-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM calculate_user_ltv(1);
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE bad.orders_old RENAME TO orders;
ALTER TABLE bad.orders RENAME COLUMN amount TO amt;
SELECT calculate_all_ltv('2024-01-01');
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE bad.orders RENAME COLUMN amt TO amount;

-- Bad arguments.
SELECT calculate_all_ltv('infinity');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ltv_distribution('email', 10);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ltv_distribution('revenue_6m; DROP TABLE bad.users', 10);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ltv_distribution('revenue_6m', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM configure_ltv(segment_vip => 100, segment_high => 500);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM configure_ltv(cac_margin => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM configure_source(successful_statuses => ARRAY['ok', NULL]);
\echo :LAST_ERROR_SQLSTATE

-- A run that fails while writing, or is cancelled, leaves the previous results as they were.
SELECT count(*) AS before, sum(lifetime_revenue) FROM ml_user_ltv;
CREATE FUNCTION bad.fail() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'disk full (simulated)'; END $$;
CREATE TRIGGER fail_on_write BEFORE INSERT ON ml_user_ltv_rows FOR EACH ROW EXECUTE FUNCTION bad.fail();
INSERT INTO bad.users VALUES (4, '2023-01-01');
SELECT calculate_all_ltv('2024-01-01');
SELECT count(*) AS after_failure, sum(lifetime_revenue) FROM ml_user_ltv;
DROP TRIGGER fail_on_write ON ml_user_ltv_rows;
CREATE FUNCTION bad.slow() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN PERFORM pg_sleep(5); RETURN NEW; END $$;
CREATE TRIGGER slow_write BEFORE INSERT ON ml_user_ltv_rows FOR EACH ROW EXECUTE FUNCTION bad.slow();
SET statement_timeout = '200ms';
SELECT calculate_all_ltv('2024-01-01');
RESET statement_timeout;
SELECT count(*) AS after_cancel, sum(lifetime_revenue) FROM ml_user_ltv;
DROP TRIGGER slow_write ON ml_user_ltv_rows;
SELECT calculate_all_ltv('2024-01-01');
SELECT count(*) AS after_success FROM ml_user_ltv;

SELECT count(*) FROM reset_configuration();
DROP SCHEMA bad CASCADE;
