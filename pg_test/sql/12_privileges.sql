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
-- The deputy may change the configuration and read the shop, not the salaries.
GRANT SELECT, INSERT, UPDATE, DELETE ON cda_config TO cda_deputy;
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
REVOKE ALL ON cda_config FROM cda_deputy;
DROP SCHEMA shop12, secret12 CASCADE;
DROP ROLE cda_deputy;
