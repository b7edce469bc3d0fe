-- Price elasticity: a synthetic shop with a known elasticity of -1.5 whose prices are marked up
-- in the peak weeks, when demand is high anyway; the estimate recovers it, equals an
-- independent two-way within regression in SQL (balanced panel) to 1e-6, standard error
-- included; Online Retail's verdicts; scenarios; bad input.
\set SHOW_CONTEXT never
CREATE SCHEMA el_fx;
CREATE TABLE el_fx.users (user_id bigint, registered_at timestamptz);
CREATE TABLE el_fx.orders (order_id bigint, user_id bigint, created_at timestamptz, status text,
                           total_amount numeric(12,2));
CREATE TABLE el_fx.products (product_id bigint, category text);
CREATE TABLE el_fx.order_items (order_id bigint, product_id bigint, quantity int, unit_price numeric(12,3));
INSERT INTO el_fx.users SELECT g, '2022-01-01' FROM generate_series(1, 50) g;
INSERT INTO el_fx.products SELECT g, CASE WHEN g <= 10 THEN 'A' ELSE 'B' END FROM generate_series(1, 20) g;
-- A uniform draw in [0, 1) from a key, the same on every machine.
CREATE FUNCTION pg_temp.u(key text) RETURNS float8 LANGUAGE sql IMMUTABLE AS
$$ SELECT (('x' || substr(md5(key), 1, 8))::bit(32)::bigint & 2147483647) / 2147483648.0 $$;
-- 20 products over 104 weeks from Monday 2023-01-02; weeks 44 to 51 of each year are the peak,
-- when prices rise 30% and demand 1.2 log points: ln Q = 4 + appeal - 1.5 ln P + 1.2 peak + noise.
CREATE TEMP TABLE truth AS
SELECT p, t, (t % 52 >= 44)::int AS peak,
       2 * pg_temp.u(p || 'base') + 0.3 * (t % 52 >= 44)::int + 0.35 * (pg_temp.u(p || ':' || t || 'p') - 0.5) AS ln_p,
       pg_temp.u(p || 'appeal') AS appeal, 0.35 * (pg_temp.u(p || ':' || t || 'q') - 0.5) AS noise
FROM generate_series(1, 20) p, generate_series(0, 103) t;
INSERT INTO el_fx.order_items
SELECT p * 1000 + t, p, round(exp(4 + appeal - 1.5 * ln(round(exp(ln_p)::numeric, 3)) + 1.2 * peak + noise)),
       round(exp(ln_p)::numeric, 3)
FROM truth;
INSERT INTO el_fx.orders
SELECT i.order_id, (i.order_id % 50) + 1, timestamptz '2023-01-04 12:00+00' + (i.order_id % 1000) * interval '7 days',
       'paid', round(i.quantity * i.unit_price, 2)
FROM el_fx.order_items i;
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'el_fx.users', orders_table => 'el_fx.orders');
SELECT count(*) > 0 AS configured FROM configure_items(order_items_table => 'el_fx.order_items', products_table => 'el_fx.products');
RESET client_min_messages;

-- All products pooled, with product and week effects: -1.5 recovered.
SELECT level, round(elasticity::numeric, 3) AS elasticity, round(ci_low::numeric, 3) AS ci_low,
       round(ci_high::numeric, 3) AS ci_high, n_periods, n_products, n_orders, price_levels,
       price_definition, method, se_type, reliability
FROM price_elasticity('all', to_date => '2024-12-31');
-- The same regression by hand: both sides demeaned by product and by week (exact for a balanced
-- panel), β = Σ x y / Σ x², clustered by product with G/(G-1) (N-1)/(N-K), K = products + weeks.
WITH cells AS (
    SELECT i.product_id AS p, o.order_id % 1000 AS t, ln(i.unit_price::float8) AS x, ln(i.quantity::float8) AS y
    FROM el_fx.order_items i JOIN el_fx.orders o USING (order_id)
), demeaned AS (
    SELECT p, t, x - avg(x) OVER (PARTITION BY p) - avg(x) OVER (PARTITION BY t) + avg(x) OVER () AS x,
                 y - avg(y) OVER (PARTITION BY p) - avg(y) OVER (PARTITION BY t) + avg(y) OVER () AS y
    FROM cells
), beta AS (SELECT sum(x * y) / sum(x * x) AS b, sum(x * x) AS sxx, count(*) AS n FROM demeaned),
scores AS (SELECT d.p, sum(d.x * (d.y - beta.b * d.x)) AS s FROM demeaned d, beta GROUP BY d.p),
hand AS (
    SELECT beta.b, sqrt(20.0 / 19 * (beta.n - 1) / (beta.n - 20 - 104) * (SELECT sum(s * s) FROM scores)) / beta.sxx AS se
    FROM beta)
SELECT abs(e.elasticity - hand.b) < 1e-6 AS same_elasticity, abs(e.std_error - hand.se) < 1e-6 AS same_std_error
FROM price_elasticity('all', to_date => '2024-12-31') e, hand;
-- Without the week effects, the peak-season mark-up passes for a price response: product effects
-- alone give a positive "elasticity", the platform's failure.
WITH cells AS (
    SELECT i.product_id AS p, ln(i.unit_price::float8) AS x, ln(i.quantity::float8) AS y
    FROM el_fx.order_items i),
demeaned AS (SELECT x - avg(x) OVER (PARTITION BY p) AS x, y - avg(y) OVER (PARTITION BY p) AS y FROM cells)
SELECT sum(x * y) / sum(x * x) > 0 AS product_effects_only_positive FROM demeaned;
-- Per category, and per product (a trend, no week effects: lower confidence, said by the method).
SELECT category, round(elasticity::numeric, 2) AS elasticity, n_products, reliability
FROM price_elasticity('category', to_date => '2024-12-31') ORDER BY category;
SELECT method, se_type, count(*) AS products FROM price_elasticity('product', to_date => '2024-12-31') GROUP BY 1, 2;
-- Monthly periods: the prices move weekly, and a month's commonest price hides that, so the
-- monthly estimate says nothing (not significant). The average price; too short a window.
SELECT round(elasticity::numeric, 1) AS elasticity, n_periods, reliability FROM price_elasticity('all', 'month', to_date => '2024-12-31');
SELECT price_definition, reliability FROM price_elasticity('all', price => 'average', to_date => '2024-12-31');
SELECT n_periods, reliability, elasticity IS NULL AS no_estimate
FROM price_elasticity('all', from_date => '2024-11-01', to_date => '2024-12-31');

-- Scenarios: exact in the log-log model (-15% at -2 is +38.4% units, not +30%), usable only
-- when the estimate is.
SELECT round(dq::numeric, 4) AS dq, round(dq_low::numeric, 4) AS dq_low, round(dq_high::numeric, 4) AS dq_high,
       round(drevenue::numeric, 4) AS drevenue, usable, reason
FROM elasticity_scenario(-2, -2.5, -1.5, -0.15);
SELECT usable, reason FROM elasticity_scenario(1.3, 0.4, 2.2, -0.1, 'implausible_positive');
SELECT usable, reason FROM elasticity_scenario(-1, -3, 0.5, 0.1, 'not_significant');
SELECT usable, reason FROM elasticity_scenario(-1, -1.2, -0.8, -1.5);

-- Online Retail (story 16's schema retail): what the data supports. Trade prices for large
-- quantities and the retail channel are price-list artefacts, so most single-product estimates
-- are unreliable, and the verdicts say so.
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'retail.users', orders_table => 'retail.orders',
                                                        successful_statuses => ARRAY['completed'],
                                                        time_zone => 'Europe/London');
SELECT count(*) > 0 AS configured FROM configure_items(order_items_table => 'retail.order_items',
                                                       products_table => 'retail.products',
                                                       non_product_column => 'is_non_product');
RESET client_min_messages;
CREATE TEMP TABLE retail_products AS SELECT * FROM price_elasticity('product', to_date => '2011-12-09');
SELECT reliability, count(*) AS products FROM retail_products GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE elasticity > 0) > 0 AS some_positive,
       bool_and(reliability <> 'ok') FILTER (WHERE elasticity > 0) AS none_of_them_ok
FROM retail_products;
SELECT round(elasticity::numeric, 2) AS elasticity, round(ci_low::numeric, 2) AS ci_low, round(ci_high::numeric, 2) AS ci_high,
       n_products, n_periods, reliability
FROM price_elasticity('all', to_date => '2011-12-09');

-- Bad input.
SELECT * FROM price_elasticity('shop');
SELECT * FROM price_elasticity(period => 'day');
SELECT * FROM price_elasticity(price => 'list');
SELECT * FROM price_elasticity(min_periods => 1);
SELECT * FROM price_elasticity(from_date => '2012-01-01', to_date => '2011-12-09');
SELECT * FROM price_elasticity(level => NULL);
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM reset_configuration();
RESET client_min_messages;
