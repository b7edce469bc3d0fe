-- The stored configuration cannot make a refresh read what its author may not read (a confused
-- deputy): the role that sets the source must be able to SELECT every table and column it names,
-- and a refresh, whoever runs it, refuses a configuration whose author has lost that privilege.
\set SHOW_CONTEXT never
CREATE ROLE cda_deputy;
CREATE SCHEMA shop12;
CREATE TABLE shop12.users (user_id bigint, registered_at timestamptz);
CREATE TABLE shop12.orders (user_id bigint, created_at timestamptz, status text, total_amount numeric(12,2));
INSERT INTO shop12.users VALUES (1, '2024-01-01');
INSERT INTO shop12.orders VALUES (1, '2024-01-02', 'paid', 10);
CREATE SCHEMA secret12;
CREATE TABLE secret12.salaries (user_id bigint, created_at timestamptz, status text, total_amount numeric(12,2));
INSERT INTO secret12.salaries VALUES (1, '2024-01-02', 'paid', 250000);
-- The deputy is an operator (it may change the configuration) and may read the shop, not the
-- salaries.
SELECT count(*) > 0 AS granted FROM grant_analytics_access('cda_deputy', 'operator');
GRANT USAGE ON SCHEMA shop12, secret12 TO cda_deputy;
GRANT SELECT ON shop12.users, shop12.orders TO cda_deputy;
SET ROLE cda_deputy;
-- Pointing the orders at the salaries, by name or by OID, is refused.
SELECT * FROM configure_source(users_table => 'shop12.users', orders_table => 'secret12.salaries');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT 'secret12.salaries'::regclass::oid AS salaries_oid \gset
SET ROLE cda_deputy;
SELECT * FROM configure_source(users_table => 'shop12.users', orders_table => :salaries_oid);
\echo :LAST_ERROR_SQLSTATE
-- A column-level grant on only some of the columns is not enough either.
RESET ROLE;
GRANT SELECT (user_id, created_at, status) ON secret12.salaries TO cda_deputy;
SET ROLE cda_deputy;
SELECT * FROM configure_source(users_table => 'shop12.users', orders_table => 'secret12.salaries');
\echo :LAST_ERROR_SQLSTATE
-- The shop it may read is accepted, and its author recorded.
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'shop12.users',
                                                        orders_table => 'shop12.orders');
RESET ROLE;
SELECT configured_by FROM cda_config;
-- The owner's refresh reads it while the author may.
SET client_min_messages = warning;
SELECT calculate_all_ltv('2024-06-30');
RESET client_min_messages;
-- Once the author may no longer read the orders, every read refuses the configuration, the
-- refresh leaves the previous results, and a per-user call says so too.
REVOKE SELECT ON shop12.orders FROM cda_deputy;
SELECT calculate_all_ltv('2024-06-30');
\echo :LAST_ERROR_SQLSTATE
SELECT lifetime_revenue FROM calculate_user_ltv(1, '2024-06-30');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS users, sum(lifetime_revenue) AS revenue FROM ml_user_ltv;
-- A role trusted with the data sets it again; the refresh goes on.
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'shop12.users',
                                                        orders_table => 'shop12.orders');
SELECT configured_by = CURRENT_USER AS reconfigured FROM cda_config;
SET client_min_messages = warning;
SELECT calculate_all_ltv('2024-06-30');
RESET client_min_messages;
SELECT count(*) FROM reset_configuration();
SELECT count(*) AS granted FROM grant_analytics_access('cda_deputy', 'none');

-- Three roles: the owner (here the superuser who created the extension), an operator who may
-- refresh, fit, train and configure, and an analyst who may only read results. No function of the
-- extension is executable by PUBLIC, so a role granted nothing can do nothing.
SELECT count(*) AS functions,
       count(*) FILTER (WHERE EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                                      WHERE a.grantee = 0)) AS public_may_execute
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'cda_analytics';
CREATE ROLE cda_operator12;
CREATE ROLE cda_analyst12;
CREATE ROLE cda_nobody12;
GRANT USAGE ON SCHEMA shop12, secret12 TO cda_operator12, cda_analyst12, cda_nobody12;
-- The shop's own grants stay the shop's: the operator may read the shop, nobody the salaries.
GRANT SELECT ON shop12.users, shop12.orders TO cda_operator12;
INSERT INTO shop12.users SELECT g, '2024-01-01'::timestamptz + g * interval '1 day' FROM generate_series(2, 60) g;
INSERT INTO shop12.orders
    SELECT g % 59 + 2, '2024-02-01'::timestamptz + g * interval '7 hours', 'paid', 5 + g % 17
    FROM generate_series(1, 600) g;
SELECT object_type, count(*), string_agg(DISTINCT privileges, '; ') AS privileges
FROM grant_analytics_access('cda_analyst12', 'analyst') GROUP BY 1 ORDER BY 1;
SELECT object_type, count(*), string_agg(DISTINCT privileges, '; ') AS privileges
FROM grant_analytics_access('cda_operator12', 'operator') GROUP BY 1 ORDER BY 1;
SELECT * FROM grant_analytics_access('cda_analyst12', 'reader');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM grant_analytics_access(NULL, 'analyst');
\echo :LAST_ERROR_SQLSTATE
-- A role granted nothing: every function, reading or writing or internal, is refused.
SET ROLE cda_nobody12;
SELECT * FROM get_ltv_summary();
\echo :LAST_ERROR_SQLSTATE
SELECT calculate_all_ltv('2024-06-30');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM _ltv_pending_rows(1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- The operator configures its shop (pointing at the salaries is refused as for anyone), then
-- refreshes, fits and trains.
SET ROLE cda_operator12;
SELECT * FROM configure_source(users_table => 'shop12.users', orders_table => 'secret12.salaries');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'shop12.users',
                                                        orders_table => 'shop12.orders');
SET client_min_messages = warning;
SELECT calculate_all_ltv('2024-06-30');
SELECT calculate_all_rfm('2024-06-30');
SELECT count(*) > 0 AS fitted FROM kmeans_fit('ops12', '2024-06-30', 3);
SELECT calculate_all_clusters('ops12', '2024-06-30');
SELECT calculate_all_anomalies('2024-06-30');
RESET client_min_messages;
SELECT count(*) AS users, sum(lifetime_revenue) AS revenue FROM ml_user_ltv;
-- Cohort retention reads the shop live: the operator may.
SELECT sum(cohort_size) AS customers, sum(revenue) AS revenue FROM cohort_retention(max_periods => 0, as_of => '2024-06-30');
RESET ROLE;
-- An independent sum of the shop's paid orders.
SELECT count(DISTINCT user_id) AS buyers, sum(total_amount) AS revenue FROM shop12.orders WHERE created_at < timestamptz '2024-07-01 00:00+00';
-- The analyst reads the results but cannot refresh, configure, train, call a row source, or read
-- the shop's tables through the extension (it has no SELECT on them).
SET ROLE cda_analyst12;
SELECT metric_name, value_lifetime FROM get_ltv_summary() WHERE metric_name = 'Average LTV';
SELECT count(*) AS rows FROM ml_user_ltv;
SELECT count(*) AS rows FROM ml_user_rfm;
SELECT calculate_all_ltv('2024-06-30');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM configure_source(orders_table => 'shop12.orders');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM kmeans_fit('analyst12', '2024-06-30', 2);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM _ltv_pending_rows(1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM _configure_source(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT lifetime_revenue FROM calculate_user_ltv(2, '2024-06-30');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM rfm_segment('2024-06-30');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM cohort_retention(as_of => '2024-06-30');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- 'none' takes back what was granted.
SELECT count(*) AS granted FROM grant_analytics_access('cda_analyst12', 'none');
SET ROLE cda_analyst12;
SELECT * FROM get_ltv_summary();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) FROM reset_configuration();
SELECT count(*) AS granted FROM grant_analytics_access('cda_operator12', 'none');
DROP SCHEMA shop12, secret12 CASCADE;
DROP ROLE cda_deputy, cda_operator12, cda_analyst12, cda_nobody12;
