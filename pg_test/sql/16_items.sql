-- Order items and products: the item source's defaults and configuration, checked like the
-- orders; lines that cannot be a sale counted by why on a hand-made shop; and UCI Online Retail
-- loaded with the demo's loader, whose counted lines equal the data's published "clean" figures
-- and an independent SQL count of each reason.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM reset_configuration();
RESET client_min_messages;

-- A hand-made shop with one line of each kind.
CREATE SCHEMA items_fx;
CREATE TABLE items_fx.users (user_id bigint, registered_at timestamptz);
CREATE TABLE items_fx.orders (order_id bigint, user_id bigint, created_at timestamptz, status text,
                              total_amount numeric(12,2));
CREATE TABLE items_fx.products (product_id bigint, category text, is_fee boolean, title text);
CREATE TABLE items_fx.order_items (order_id bigint, product_id bigint, quantity numeric, unit_price numeric);
INSERT INTO items_fx.users VALUES (1, '2024-01-01'), (2, '2024-01-01');
INSERT INTO items_fx.orders VALUES
    (10, 1, '2024-02-01', 'paid', 30), (11, 1, '2024-03-01', 'cancelled', 5),
    (12, 2, '2024-03-05', 'shipped', 12), (13, 3, '2024-03-06', 'paid', 9),
    (14, 2, '2024-09-01', 'paid', 4);
INSERT INTO items_fx.products VALUES (100, 'MUG', false, 'mug'), (101, 'BAG', false, 'bag'),
                                     (102, NULL, false, 'no category'), (900, 'FEE', true, 'postage');
INSERT INTO items_fx.order_items VALUES
    (10, 100, 2, 3.50),       -- counts
    (10, 101, 1, 10),         -- counts
    (10, 102, 1, 1),          -- counts (a product without a category is still a product)
    (10, 100, -1, 3.50),      -- a return line: not negative demand
    (10, 100, NULL, 3.50),    -- no quantity
    (12, 101, 2, 0),          -- free: no price to learn from
    (12, 101, 2, 'NaN'),      -- not a number
    (12, 555, 1, 2),          -- no such product
    (12, 900, 1, 4.95),       -- postage
    (11, 100, 5, 1),          -- a cancelled order: not a counted order at all
    (13, 100, 5, 1),          -- user 3 is not in the users table
    (14, 100, 1, 3.50);       -- after the as-of date
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'items_fx.users', orders_table => 'items_fx.orders');
-- The defaults: order_items and products beside the orders.
SELECT * FROM item_configuration();
SELECT * FROM order_items_report('2024-06-30');
-- Marking the fee: the postage line is left out as not a product.
SELECT * FROM configure_items(non_product_column => 'is_fee') WHERE setting = 'non_product_column';
SELECT * FROM order_items_report('2024-06-30');

-- Mistakes: named, with the function to fix them.
SELECT * FROM configure_items(quantity_column => 'qty');
SELECT * FROM configure_items(non_product_column => 'title');
SELECT * FROM configure_items(category_column => 'nope');
SELECT * FROM configure_items(order_items_table => 'items_fx.nope');
SELECT * FROM configure_items(products_table => 'items_fx.users');
SELECT * FROM configure_items(order_id_column => 'status');
SELECT * FROM configure_items(unit_price_column => 'order_id', item_order_id_column => 'unit_price');
-- Nothing was stored by the refused calls.
SELECT * FROM item_configuration() WHERE setting IN ('quantity_column', 'non_product_column', 'products_table');
-- An empty non_product_column removes it.
SELECT * FROM configure_items(non_product_column => '') WHERE setting = 'non_product_column';

-- UCI Online Retail, loaded by the demo's loader into its own schema.
\getenv abs_srcdir PG_ABS_SRCDIR
\set retail_file :abs_srcdir '/../demo/online_retail/online_retail.csv.gz'
\set retail_schema retail
SET client_min_messages = warning;
\set ECHO none
\i :abs_srcdir/../demo/load_online_retail.sql
\set ECHO all
RESET client_min_messages;
SELECT (SELECT count(*) FROM retail.products) AS products, (SELECT count(*) FROM retail.users) AS users,
       (SELECT count(*) FROM retail.orders) AS orders,
       (SELECT count(*) FROM retail.orders WHERE status = 'completed') AS completed,
       (SELECT sum(total_amount) FROM retail.orders WHERE status = 'completed') AS revenue,
       (SELECT count(*) FROM retail.order_items) AS lines;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'retail.users', orders_table => 'retail.orders',
                                                        successful_statuses => ARRAY['completed'],
                                                        time_zone => 'Europe/London');
SELECT count(*) > 0 AS configured FROM configure_items(order_items_table => 'retail.order_items',
                                                       products_table => 'retail.products',
                                                       non_product_column => 'is_non_product');
-- The data's README: 396,337 clean lines of 4,334 customers and 3,659 products, once
-- cancellations, adjustments, zero prices, lines without a customer and the fee codes are out.
SELECT * FROM order_items_report('2011-12-31');
-- The same, by hand: every line of a completed order, and why each left out is.
SELECT count(*) FILTER (WHERE why = 'counts') AS counted,
       count(*) FILTER (WHERE why = 'quantity') AS bad_quantity,
       count(*) FILTER (WHERE why = 'price') AS bad_price,
       count(*) FILTER (WHERE why = 'fee') AS not_a_product,
       count(DISTINCT product_id) FILTER (WHERE why = 'counts') AS products,
       count(DISTINCT user_id) FILTER (WHERE why = 'counts') AS customers
FROM (SELECT i.product_id, o.user_id,
             CASE WHEN i.quantity <= 0 THEN 'quantity' WHEN i.unit_price <= 0 THEN 'price'
                  WHEN p.is_non_product THEN 'fee' ELSE 'counts' END AS why
      FROM retail.order_items i JOIN retail.orders o ON o.order_id = i.order_id AND o.status = 'completed'
      JOIN retail.products p ON p.product_id = i.product_id) x;
-- The same with the lines gathered by parallel workers (the planner pushed to a parallel plan):
-- the workers' parts, sent to the leader encoded, give the same report. In a new session, as a
-- session keeps the plan of its first read.
CREATE TABLE serial_report AS SELECT * FROM order_items_report('2011-12-31');
\c
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT _order_lines(o.user_id, 1, i.order_id, i.product_id, i.quantity::float8, i.unit_price::float8, 0)
FROM retail.orders o JOIN retail.order_items i ON i.order_id = o.order_id;
SELECT count(*) AS differ FROM (
    (SELECT * FROM order_items_report('2011-12-31') EXCEPT SELECT * FROM serial_report)
    UNION ALL (SELECT * FROM serial_report EXCEPT SELECT * FROM order_items_report('2011-12-31'))) d;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE serial_report;

SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM reset_configuration();
RESET client_min_messages;
