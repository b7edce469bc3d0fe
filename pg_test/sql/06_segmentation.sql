-- Snapshot features at a date (window edges, categories, bad input) and K-means models that are
-- reproducible, stored, and applied to later snapshots without refitting.

-- Features on a hand-made shop, as of 2021-06-30.
CREATE SCHEMA seg_fx;
CREATE TABLE seg_fx.users (user_id bigint, registered_at timestamptz);
CREATE TABLE seg_fx.orders (order_id bigint, user_id bigint, created_at timestamptz, status text,
                            total_amount numeric(12,2), currency text);
INSERT INTO seg_fx.users VALUES (1, '2020-01-01'), (2, '2020-01-01'), (3, '2020-01-01'), (4, '2021-07-10');
-- User 1: orders on D, D-89 and D-90 (the 90-day window is D-89..D), D-179 and D-180 (the 180-day
-- window is D-179..D), and one after D. User 2: one old order. User 3: none. User 4 signs up
-- after D (with an order dated before D). A cancelled order never counts.
INSERT INTO seg_fx.orders VALUES
    (1, 1, '2021-06-30 23:59+00', 'paid', 10, 'USD'), (2, 1, DATE '2021-06-30' - 89, 'paid', 20, 'USD'),
    (3, 1, DATE '2021-06-30' - 90, 'shipped', 40, 'USD'), (4, 1, DATE '2021-06-30' - 179, 'completed', 80, 'USD'),
    (5, 1, DATE '2021-06-30' - 180, 'paid', 160, 'USD'), (6, 1, '2021-07-01 00:00+00', 'paid', 999, 'USD'),
    (7, 2, DATE '2021-06-30' - 200, 'paid', 50, 'USD'), (8, 4, '2021-06-25', 'paid', 70, 'USD'),
    (9, 2, '2021-06-29', 'cancelled', 500, 'USD');
SELECT count(*) AS settings FROM configure_source(users_table => 'seg_fx.users', orders_table => 'seg_fx.orders');
SELECT * FROM user_features('2021-06-30') ORDER BY user_id;
-- With order items and products next to the orders, distinct categories over the 180 days.
CREATE TABLE seg_fx.products (product_id bigint, category text);
CREATE TABLE seg_fx.order_items (order_id bigint, product_id bigint);
INSERT INTO seg_fx.products VALUES (1, 'books'), (2, 'music'), (3, 'games'), (4, 'toys'), (5, NULL);
INSERT INTO seg_fx.order_items VALUES (1, 1), (1, 1), (2, 2), (4, 1), (4, 5), (5, 3), (6, 4), (7, 2);
SELECT * FROM user_features('2021-06-30') ORDER BY user_id;
-- Only data up to D: moving every later order further into the future changes nothing.
UPDATE seg_fx.orders SET created_at = created_at + interval '5 years', total_amount = 1 WHERE created_at >= '2021-07-01';
SELECT * FROM user_features('2021-06-30') ORDER BY user_id;
-- Bad rows are counted and left out.
INSERT INTO seg_fx.orders VALUES (10, 1, '2021-06-01', 'paid', NULL, 'USD'), (11, 1, '2021-06-01', 'paid', -1, 'USD'),
    (12, NULL, '2021-06-01', 'paid', 5, 'USD'), (13, 77, '2021-06-01', 'paid', 5, 'USD'),
    (14, 1, NULL, 'paid', 5, 'USD'), (15, 1, '2021-06-01', NULL, 5, 'USD');
SELECT user_id, frequency_90d, monetary_180d FROM user_features('2021-06-30') ORDER BY user_id;
-- A duplicate user id is an error, as for LTV.
INSERT INTO seg_fx.users VALUES (2, '2020-01-01');
SELECT * FROM user_features('2021-06-30');
DELETE FROM seg_fx.users WHERE ctid = (SELECT max(ctid) FROM seg_fx.users WHERE user_id = 2);

-- K-means bad input: k below 2, k above the number of customers, no customers, no model.
SELECT * FROM kmeans_fit('fx', '2021-06-30', 1);
SELECT * FROM kmeans_fit('fx', '2021-06-30', 2000);
SELECT * FROM kmeans_fit('fx', '2021-06-30', 5);
SELECT * FROM kmeans_fit('fx', '2000-01-01', 2);
SELECT * FROM kmeans_fit('', '2021-06-30', 2);
SELECT * FROM kmeans_assign('no such model', '2021-06-30');
SELECT cluster, cluster_name, users, recency_days, frequency_90d, round(monetary_180d::numeric, 2) AS monetary_180d,
       round(aov_180d::numeric, 2) AS aov_180d, categories_180d FROM kmeans_fit('fx', '2021-06-30', 2);
SELECT model_name, version, k, features, k_chosen_by FROM ml_kmeans_models;
-- A model fitted with categories cannot be applied once the tables are gone.
DROP TABLE seg_fx.order_items;
SELECT * FROM kmeans_assign('fx', '2021-06-30');
SELECT count(*) AS settings FROM reset_configuration();
DROP SCHEMA seg_fx CASCADE;

-- On CDNOW (loaded by 04_cdnow): the features equal a plain-SQL formulation, whatever the
-- session's time zone (dates are taken in the configured zone, UTC).
SET TimeZone = 'Asia/Tokyo';
SELECT count(*) AS customers,
       count(*) FILTER (WHERE (f.recency_days, f.frequency_90d, f.monetary_180d, f.aov_180d) IS DISTINCT FROM
                               (p.rec, p.f90, p.m180, p.aov)) AS differing
FROM user_features('1997-09-30') f FULL JOIN (
    SELECT user_id, DATE '1997-09-30' - max(d) AS rec, count(*) FILTER (WHERE d > DATE '1997-09-30' - 90)::int AS f90,
           coalesce(sum(amt) FILTER (WHERE d > DATE '1997-09-30' - 180), 0) AS m180,
           coalesce(round(avg(amt) FILTER (WHERE d > DATE '1997-09-30' - 180), 2), 0) AS aov
    FROM (SELECT user_id, (created_at AT TIME ZONE 'UTC')::date AS d, total_amount AS amt FROM public.orders
          WHERE status IN ('paid', 'shipped', 'completed')) o
    WHERE d <= '1997-09-30' GROUP BY user_id) p USING (user_id);
RESET TimeZone;

-- Same data and seed, same model.
SELECT cluster, cluster_name, users, round(share::numeric, 4) AS share, round(recency_days::numeric, 1) AS recency_days,
       round(frequency_90d::numeric, 2) AS frequency_90d, round(monetary_180d::numeric, 2) AS monetary_180d,
       round(aov_180d::numeric, 2) AS aov_180d, categories_180d, model_version
FROM kmeans_fit('cdnow4', '1997-09-30', 4, 42);
SELECT count(*) AS users FROM kmeans_fit('cdnow4_again', '1997-09-30', 4, 42);
SELECT a.centroids = b.centroids AS same_centroids, a.feature_mean = b.feature_mean AS same_scaling,
       a.cluster_names = b.cluster_names AS same_names
FROM ml_kmeans_models a, ml_kmeans_models b WHERE a.model_name = 'cdnow4' AND b.model_name = 'cdnow4_again';
-- Clusters are numbered by 180-day spend, highest first.
SELECT bool_and(c1 >= c2) AS ordered_by_spend FROM (
    SELECT centroids_in_units[i][3] AS c1, centroids_in_units[i + 1][3] AS c2
    FROM ml_kmeans_models, generate_series(1, k - 1) i WHERE model_name = 'cdnow4') t;
-- k chosen by silhouette over 2..10 is the k with the highest silhouette.
SELECT count(*) AS clusters FROM kmeans_fit('cdnow_auto', '1997-09-30');
SELECT k, candidate_k, k = candidate_k[array_position(candidate_silhouette,
           (SELECT max(s) FROM unnest(candidate_silhouette) s))] AS best_silhouette, k_chosen_by
FROM ml_kmeans_models WHERE model_name = 'cdnow_auto';

-- Assignment against the stored model: the fit date's snapshot lands where the fit put it, and a
-- later snapshot goes to the same stored clusters (same version, same names), not to a refit.
SELECT cluster, count(*) FROM kmeans_assign('cdnow4', '1997-09-30') GROUP BY 1 ORDER BY 1;
SELECT cluster, cluster_name, model_version, count(*) FROM kmeans_assign('cdnow4', '1998-06-30') GROUP BY 1, 2, 3 ORDER BY 1;
SELECT count(*) AS versions FROM ml_kmeans_models WHERE model_name = 'cdnow4';
SELECT count(*) AS differing FROM (
    SELECT * FROM kmeans_assign('cdnow4', '1998-06-30') EXCEPT SELECT * FROM kmeans_assign('cdnow4', '1998-06-30')) x;
-- Refitting a name adds a version; assignment then uses the newest.
SELECT count(*) FROM kmeans_fit('cdnow4', '1998-06-30', 3, 7);
SELECT version, k, snapshot_date, seed FROM ml_kmeans_models WHERE model_name = 'cdnow4' ORDER BY version;
SELECT DISTINCT model_version FROM kmeans_assign('cdnow4', '1998-06-30');

-- Results table, migration and sizes over the stored clusters of one model.
SELECT calculate_all_clusters('cdnow4_again', '1998-06-30') AS users_written;
SELECT model_name, model_version, as_of_date, count(*) FROM ml_user_clusters GROUP BY 1, 2, 3;
SELECT sum(users) AS users FROM cluster_migration('cdnow4_again', '1997-09-30', '1998-06-30');
SELECT * FROM cluster_migration('cdnow4_again', '1997-09-30', '1998-06-30') WHERE to_cluster LIKE '1:%';
SELECT snapshot_date, sum(users) AS users FROM cluster_sizes('cdnow4_again', '1997-03-31', '1997-05-31', '1 month')
GROUP BY 1 ORDER BY 1;
