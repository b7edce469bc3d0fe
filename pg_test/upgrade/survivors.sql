-- What an upgrade must keep, as "name: md5" lines, run before ALTER EXTENSION ... UPDATE (by the
-- old library on the old catalog) and after it (by the new library): every table and view of
-- 0.1.0 row by row (ml_recommender_neighbors is a table before and a view after, with the same
-- columns; ml_recommender_products keeps its 0.1.0 columns), and what the stored models answer
-- for a sample of customers and products: recommendations, similar products, CLV, churn and
-- cluster assignments. The two outputs must be equal line for line.
\pset format unaligned
\pset tuples_only on
\pset pager off
SET extra_float_digits = 1;
CREATE TEMP TABLE survivor (name text, digest text);
DO $$
DECLARE
    rel text;
    d text;
BEGIN
    FOREACH rel IN ARRAY ARRAY['cda_config', 'cda_item_config', 'ml_user_ltv_rows', 'ml_ltv_as_of', 'ml_user_ltv',
                               'ml_ltv_runs', 'ml_ltv_summary', 'ml_ltv_distribution', 'rfm_segment_map',
                               'ml_rfm_runs', 'ml_user_rfm_rows', 'ml_rfm_as_of', 'ml_user_rfm', 'ml_kmeans_models',
                               'ml_user_clusters', 'ml_clv_models', 'ml_user_clv', 'ml_user_anomalies_weekly',
                               'ml_churn_models', 'ml_churn_model_metrics', 'ml_churn_scores', 'ml_purchase_scores',
                               'ml_recommender_models', 'ml_recommender_neighbors', 'ml_user_recommendations',
                               'ltv_last_run']
    LOOP
        EXECUTE format('SELECT count(*) || '' rows '' || md5(coalesce(string_agg(t::text, ''|'' ORDER BY t::text), '''')) FROM %I t', rel)
            INTO d;
        INSERT INTO survivor VALUES ('table ' || rel, d);
    END LOOP;
END
$$;
INSERT INTO survivor
SELECT 'table ml_recommender_products (0.1.0 columns)',
       count(*) || ' rows ' || md5(string_agg(format('%s,%s,%s', model_name, product_id, popularity), '|' ORDER BY model_name, product_id))
FROM ml_recommender_products;

-- A sample of customers with orders, and of products with neighbours.
CREATE TEMP TABLE sample_users AS
SELECT user_id FROM ml_user_ltv WHERE orders_lifetime > 0 ORDER BY md5(user_id::text) LIMIT 25;
CREATE TEMP TABLE sample_products AS
SELECT DISTINCT product_id FROM ml_recommender_neighbors WHERE model_name = 'cosine'
ORDER BY product_id LIMIT 25;

INSERT INTO survivor
SELECT 'recommend ' || m.model, md5(string_agg(r::text, '|' ORDER BY u.user_id, r.rank))
FROM (VALUES ('cosine'), ('default'), ('again')) m(model), sample_users u,
     LATERAL recommend(u.user_id, 10, m.model) r
GROUP BY m.model;
INSERT INTO survivor
SELECT 'similar_products cosine', md5(string_agg(s::text, '|' ORDER BY p.product_id, s::text))
FROM sample_products p, LATERAL similar_products(p.product_id, 10, 'cosine') s;
INSERT INTO survivor
SELECT 'clv_user bg gg', md5(string_agg(c::text, '|' ORDER BY u.user_id))
FROM sample_users u, LATERAL clv_user('bg', u.user_id, 52, 'week', 'gg', '2011-12-09') c;
INSERT INTO survivor
SELECT 'churn_user churn', md5(string_agg(c::text, '|' ORDER BY u.user_id))
FROM sample_users u, LATERAL churn_user(u.user_id, 'churn', '2011-12-09') c;
INSERT INTO survivor
SELECT 'kmeans_assign value', md5(string_agg(k::text, '|' ORDER BY k::text))
FROM kmeans_assign('value', '2011-12-09') k;

SELECT name || ': ' || digest FROM survivor ORDER BY name;
