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
