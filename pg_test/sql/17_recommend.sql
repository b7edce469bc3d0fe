-- Recommenders evaluated on Online Retail (loaded by story 16 into the schema retail): the
-- protocol's counts (customers, products and pairs of the training window, test buyers, cold
-- start), EASE and the default list at the issue's targets, and bad input. The numbers of every
-- model are checked against an independent numpy implementation by
-- pg_test/reference/recommenders.py.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'retail.users', orders_table => 'retail.orders',
                                                        successful_statuses => ARRAY['completed'],
                                                        time_zone => 'Europe/London');
SELECT count(*) > 0 AS configured FROM configure_items(order_items_table => 'retail.order_items',
                                                       products_table => 'retail.products',
                                                       non_product_column => 'is_non_product');
RESET client_min_messages;
-- Cutoff 2011-09-01, the test window to the end of the data.
CREATE TEMP TABLE evaluation AS
SELECT * FROM evaluate_recommenders('2011-09-01', '100 days', models => '{popularity,buy_again,ease,default}');
SELECT model, mode, k, users, round(hit_rate::numeric, 3) AS hit_rate, round(ndcg::numeric, 3) AS ndcg,
       round(coverage::numeric, 3) AS coverage, cold_start_buyers
FROM evaluation ORDER BY model, mode, k;
-- The targets: EASE at least .110 NDCG@20 and .65 hit rate@20 on new products (about twice
-- popularity), the default list at least .35 NDCG@20 with repeats counted.
SELECT (SELECT ndcg >= 0.110 AND hit_rate >= 0.65 FROM evaluation WHERE model = 'ease' AND mode = 'new' AND k = 20) AS ease_on_target,
       (SELECT ndcg FROM evaluation WHERE model = 'ease' AND mode = 'new' AND k = 20)
       / (SELECT ndcg FROM evaluation WHERE model = 'popularity' AND mode = 'new' AND k = 20) >= 1.8 AS ease_about_twice_popularity,
       (SELECT ndcg >= 0.35 FROM evaluation WHERE model = 'default' AND mode = 'all' AND k = 20) AS default_on_target;

-- Bad input.
SELECT * FROM evaluate_recommenders('2011-09-01', models => '{ease,wizard}');
SELECT * FROM evaluate_recommenders('2011-09-01', models => '{ease,NULL}');
SELECT * FROM evaluate_recommenders('2011-09-01', lambda => 0);
SELECT * FROM evaluate_recommenders('2011-09-01', ks => '{0}');
SELECT * FROM evaluate_recommenders('2011-09-01', ks => '{}');
SELECT * FROM evaluate_recommenders('2011-09-01', horizon => '0 days');
SELECT * FROM evaluate_recommenders('2011-09-01', neighbours => 0);
SELECT * FROM evaluate_recommenders('2011-09-01', max_items => 100, models => '{ease}');
SELECT * FROM evaluate_recommenders('infinity');
SELECT * FROM evaluate_recommenders(NULL);
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM reset_configuration();
RESET client_min_messages;
