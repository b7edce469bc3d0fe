-- Pointing the extension at a shop's own tables: other names, quoted identifiers, an enum
-- status, a timestamp without time zone, a date column, integer amounts, a view.
CREATE SCHEMA "Shop";
CREATE TYPE "Shop".order_state AS ENUM ('new', 'PAID', 'sent', 'void');
CREATE TABLE "Shop"."Customers" ("CustomerId" integer PRIMARY KEY, joined date NOT NULL);
CREATE TABLE "Shop".purchases (id serial, customer integer, placed timestamp, state "Shop".order_state,
                               cents_total bigint);
INSERT INTO "Shop"."Customers" VALUES (10, '2024-01-31'), (20, '2024-03-01');
INSERT INTO "Shop".purchases (customer, placed, state, cents_total) VALUES
    (10, '2024-04-30 23:59', 'PAID', 1250),   -- last day of 3m (Jan 31 + 3 months = Apr 30)
    (10, '2024-05-01 00:00', 'sent', 750),    -- 6m
    (10, '2024-05-02 00:00', 'void', 99999),  -- not successful
    (20, '2024-03-01 00:00', 'new', 500);     -- not successful
SET search_path = "Shop", public;
SELECT * FROM configure_source(
    users_table => '"Customers"', user_id_column => 'CustomerId', registered_at_column => 'joined',
    orders_table => 'purchases', order_user_id_column => 'customer', order_date_column => 'placed',
    status_column => 'state', amount_column => 'cents_total', successful_statuses => ARRAY['PAID', 'sent']);
RESET search_path;
SELECT calculate_all_ltv('2024-12-31');
-- Integer amounts keep scale 0: 1250 + 750 = 2000 units.
SELECT user_id, revenue_3m, revenue_6m, lifetime_revenue, orders_lifetime, segment FROM ml_user_ltv ORDER BY user_id;
SELECT amount_scale, users_source, orders_source, successful_statuses FROM ltv_last_run;

-- A view works as a source too, for example to convert currencies or exclude test accounts.
CREATE VIEW "Shop".purchases_eur AS
    SELECT customer, placed, state, round(cents_total * 0.92 / 100, 2) AS amount_eur FROM "Shop".purchases;
SELECT value FROM configure_source(orders_table => '"Shop".purchases_eur', amount_column => 'amount_eur')
WHERE setting IN ('orders_table', 'amount_column');
SELECT calculate_all_ltv('2024-12-31');
SELECT user_id, revenue_3m, lifetime_revenue FROM ml_user_ltv ORDER BY user_id;

-- The mapping is stored in the database: it survives the session (see also the isolation test
-- config_visible) and is dumped by pg_dump as extension configuration.
SELECT setting, value FROM cda_configuration() WHERE setting LIKE '%table' ORDER BY setting;
SELECT count(*) FROM reset_configuration();
DROP SCHEMA "Shop" CASCADE;

-- How statuses compare. A text or varchar status under a deterministic collation is compared by
-- the read itself, byte for byte, which is what = means for it; under a non-deterministic
-- collation (here case-insensitive), or as char(n) (trailing blanks ignored), the column's own
-- equality decides in the query. Each way gives what SQL's = gives.
CREATE SCHEMA status_kinds;
CREATE COLLATION status_kinds.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE status_kinds.users (user_id bigint, registered_at timestamptz);
INSERT INTO status_kinds.users VALUES (1, '2024-01-01'), (2, '2024-01-01'), (3, '2024-01-01');
CREATE TABLE status_kinds.orders (user_id bigint, created_at timestamptz, total_amount numeric(12,2),
    plain varchar(10), ci text COLLATE status_kinds.ci, padded char(8));
INSERT INTO status_kinds.orders VALUES
    (1, '2024-02-01', 10, 'paid', 'paid', 'paid'),
    (2, '2024-02-01', 20, 'PAID', 'PAID', 'paid'),
    (3, '2024-02-01', 40, 'paid ', 'Paid', 'void'),
    (3, '2024-02-02', 'NaN', 'void', 'void', 'void');  -- never read: not a successful order
CREATE FUNCTION pg_temp.ltv_by_status(col text) RETURNS TABLE (status_column text, user_id bigint,
        lifetime_revenue numeric, per_user numeric, plain_sql numeric) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM configure_source(users_table => 'status_kinds.users', orders_table => 'status_kinds.orders',
                             status_column => col, successful_statuses => ARRAY['paid']);
    PERFORM calculate_all_ltv('2024-12-31');
    RETURN QUERY EXECUTE format(
        'SELECT %L::text, l.user_id, l.lifetime_revenue,
                (SELECT c.lifetime_revenue FROM calculate_user_ltv(l.user_id, %L) c),
                (SELECT COALESCE(sum(o.total_amount), 0) FROM status_kinds.orders o
                 WHERE o.user_id = l.user_id AND o.%I = ''paid'')
         FROM ml_user_ltv l ORDER BY l.user_id', col, '2024-12-31', col);
END $$;
SET client_min_messages = warning;
SELECT * FROM pg_temp.ltv_by_status('plain');
SELECT * FROM pg_temp.ltv_by_status('ci');
SELECT * FROM pg_temp.ltv_by_status('padded');
RESET client_min_messages;
SELECT count(*) FROM reset_configuration();
DROP SCHEMA status_kinds CASCADE;

-- The successful statuses are written into the read's query as quoted constants: a quote or a
-- backslash in one is just a character of it. User 1's two orders count; user 2's look alike
-- but are other statuses.
CREATE SCHEMA odd_status;
CREATE TABLE odd_status.users (user_id bigint, registered_at timestamptz);
INSERT INTO odd_status.users VALUES (1, '2024-01-01'), (2, '2024-01-01');
CREATE TABLE odd_status.orders (user_id bigint, created_at timestamptz, total_amount numeric(12,2),
    status text);
INSERT INTO odd_status.orders VALUES
    (1, '2024-02-01', 10, 'it''s paid'), (1, '2024-02-02', 5, 'back\slash'),
    (2, '2024-02-01', 7, 'its paid'), (2, '2024-02-03', 9, 'back\\slash');
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'odd_status.users',
    orders_table => 'odd_status.orders', successful_statuses => ARRAY['it''s paid', 'back\slash']);
SELECT calculate_all_ltv('2024-12-31');
RESET client_min_messages;
SELECT user_id, lifetime_revenue, orders_lifetime FROM ml_user_ltv ORDER BY user_id;
SELECT count(*) FROM reset_configuration();
DROP SCHEMA odd_status CASCADE;

-- An amount column with more decimal places than amounts are summed exactly at (six) is refused
-- with an error that says what to do, rather than rounded without a word; six places are read.
CREATE SCHEMA fine_amounts;
CREATE TABLE fine_amounts.users (user_id bigint, registered_at timestamptz);
CREATE TABLE fine_amounts.orders (user_id bigint, created_at timestamptz, status text,
                                  total_amount numeric(38,10), amount6 numeric(20,6));
\set SHOW_CONTEXT never
SELECT * FROM configure_source(users_table => 'fine_amounts.users', orders_table => 'fine_amounts.orders');
\echo :LAST_ERROR_SQLSTATE
SELECT value FROM configure_source(users_table => 'fine_amounts.users', orders_table => 'fine_amounts.orders',
                                   amount_column => 'amount6')
WHERE setting = 'amount_column';
SELECT count(*) FROM reset_configuration();
DROP SCHEMA fine_amounts CASCADE;
