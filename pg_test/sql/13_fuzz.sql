-- A seeded fuzz of every function of the extension that SQL can call: NULLs, zero, negative and
-- huge numbers, NaN and infinities, extreme dates, empty and very long strings, unknown names and
-- hand-made internal states, in random combinations, over a small shop with bad rows in it. The
-- test fails if the server restarts or the connection drops (a crash) or if any call ends in an
-- internal error (XX000) or a PANIC-level failure; every other error is the expected answer to a
-- bad argument. Each call is its own statement under a 3 s statement_timeout, so the whole run is
-- bounded; the seed makes it the same run every time.
\set SHOW_CONTEXT never
SELECT pg_postmaster_start_time() AS started \gset
CREATE SCHEMA fuzz;
CREATE TABLE fuzz.users (user_id bigint, registered_at timestamptz);
CREATE TABLE fuzz.orders (order_id bigint, user_id bigint, created_at timestamptz, status text,
                          total_amount numeric);
SELECT setseed(0.2026);
INSERT INTO fuzz.users
SELECT i, timestamptz '2022-01-01' + (random() * 700) * interval '1 day' FROM generate_series(1, 300) i;
-- Customers buy for a while after signing up (from days to years) and then stop, as real ones do,
-- so that the purchase models have something to fit.
INSERT INTO fuzz.orders
SELECT i, u.user_id,
       u.registered_at + random() * ((u.user_id % 10) * 70 + 5) * interval '1 day',
       (ARRAY['paid', 'shipped', 'completed', 'cancelled'])[1 + (random() * 3)::int],
       round(((u.user_id % 13 + 5) * (0.5 + random()))::numeric, 2)
FROM generate_series(1, 3000) i JOIN fuzz.users u ON u.user_id = 1 + (i * 7919) % 300;
INSERT INTO fuzz.orders VALUES
    (9001, NULL, '2023-01-01', 'paid', 5), (9002, 1, NULL, 'paid', 5), (9003, 2, '2023-01-01', 'paid', NULL),
    (9004, 3, '2023-01-01', 'paid', -5), (9005, 4, 'infinity', 'paid', 5), (9006, 5, '-infinity', 'paid', 5),
    (9007, 999999, '2023-01-01', 'paid', 5), (9008, 6, '2023-01-01', NULL, 5),
    (9009, 7, '2023-01-01', 'paid', 1e15), (9010, 8, '2023-01-01', 'paid', -0.004);
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'fuzz.users', orders_table => 'fuzz.orders');
-- Results and models named 'fz' (a name in the pool below), so that calls reach past the lookup.
SELECT calculate_all_ltv('2024-06-30') > 0 AS ltv, calculate_all_rfm('2024-06-30') > 0 AS rfm;
SELECT count(*) > 0 AS kmeans FROM kmeans_fit('fz', '2024-06-30', 3);
SELECT count(*) > 0 AS clv FROM clv_fit('fz', 'bgnbd', 'week', '2024-06-30', 0.01);
SELECT count(*) > 0 AS churn FROM churn_train('fz', as_of => '2024-06-30', snapshot_weeks => 20, btyd_model => 'none');
SELECT count(*) AS scored FROM (SELECT calculate_all_churn('fz', '2024-06-30'), calculate_all_anomalies('2024-06-30')) s;
RESET client_min_messages;

-- Values per type, from ordinary to hostile.
CREATE TEMP TABLE fuzz_values (ty text, v text);
INSERT INTO fuzz_values
SELECT 'bigint', v FROM unnest(ARRAY['NULL', '0', '1', '2', '-1', '7', '150', '2147483647', '-2147483648',
    '9223372036854775807', '-9223372036854775808']) v
UNION ALL SELECT 'integer', v FROM unnest(ARRAY['NULL', '0', '1', '2', '3', '-1', '5', '20', '52', '1000',
    '100000', '2147483647', '-2147483648']) v
UNION ALL SELECT 'smallint', v FROM unnest(ARRAY['NULL', '0', '1', '-1', '32767']) v
UNION ALL SELECT 'double precision', v FROM unnest(ARRAY['NULL', '0', '1', '0.5', '-1', '0.01', '12', '52',
    '1e-300', '1e308', '''NaN''', '''Infinity''', '''-Infinity''']) v
UNION ALL SELECT 'numeric', v FROM unnest(ARRAY['NULL', '0', '1', '0.3', '-1', '1000', '1e100', '''NaN''',
    '0.000000000000000000001']) v
UNION ALL SELECT 'date', v FROM unnest(ARRAY['NULL', '''2024-06-30''', '''2023-06-30''', '''2022-01-01''',
    '''1970-01-01''', '''infinity''', '''-infinity''', '''4713-01-01 BC''', '''5874897-12-31''',
    '''9999-12-31''']) v
UNION ALL SELECT 'timestamp with time zone', v FROM unnest(ARRAY['NULL', '''2024-06-30''', '''infinity''',
    '''-infinity''', '''294276-12-31''', '''4713-01-01 BC''']) v
UNION ALL SELECT 'timestamp without time zone', v FROM unnest(ARRAY['NULL', '''2024-06-30''', '''infinity''',
    '''4713-01-01 BC''']) v
UNION ALL SELECT 'text', v FROM unnest(ARRAY['NULL', '''''', '''x''', '''bgnbd''', '''pareto_nbd''',
    '''gamma_gamma''', '''week''', '''day''', '''churn''', '''purchase''', '''revenue''', '''lifetime_revenue''',
    '''aov''', '''analyst''', '''operator''', '''fz''', '''fz''', '''fzg''', '''no such thing''', 'repeat(''x'', 100000)',
    '''it''''s''', 'E''\\x01''', '''users''', '''status''']) v
UNION ALL SELECT 'text[]', v FROM unnest(ARRAY['NULL', '''{}''', '''{paid}''', '''{NULL}''',
    'ARRAY[repeat(''x'', 5000)]']) v
UNION ALL SELECT 'interval', v FROM unnest(ARRAY['NULL', '''1 day''', '''1 week''', '''1 month''', '''0''',
    '''-1 day''', '''1000 years''', '''1 microsecond''']) v
UNION ALL SELECT 'boolean', v FROM unnest(ARRAY['NULL', 'true', 'false']) v
UNION ALL SELECT 'regclass', v FROM unnest(ARRAY['NULL', '''fuzz.orders''', '''fuzz.users''', '''pg_class''',
    '''pg_authid''']) v
UNION ALL SELECT 'oid', v FROM unnest(ARRAY['NULL', '0', '1', '1259', '4294967295']) v
UNION ALL SELECT 'regrole', v FROM unnest(ARRAY['NULL', 'CURRENT_USER::regrole']) v
UNION ALL SELECT 'bytea', v FROM unnest(ARRAY['NULL', '''\x''', '''\x00''', '''\x43444153efbeadde''',
    'decode(repeat(''ff'', 300), ''hex'')', 'decode(''43444153'' || repeat(''00'', 200), ''hex'')']) v
UNION ALL SELECT 'tid', v FROM unnest(ARRAY['NULL', '''(0,1)''', '''(4294967295,65535)''']) v;

-- Eight random argument lists per function (and aggregate), drawn with the seed above.
CREATE TEMP TABLE fuzz_calls (id serial, fn text, call text, sqlstate text, message text);
INSERT INTO fuzz_calls (fn, call)
SELECT p.oid::regprocedure::text,
       format('SELECT %s(%s)', p.oid::regproc,
              (SELECT coalesce(string_agg(
                   (SELECT v.v FROM fuzz_values v WHERE v.ty = format_type(a.t, NULL)
                    ORDER BY random() + r.round * 0 + a.i * 0 LIMIT 1) || '::' || format_type(a.t, NULL),
                   ', ' ORDER BY a.i), '')
               FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i)))
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'cda_analytics'
CROSS JOIN generate_series(1, 8) r(round)
WHERE NOT 'internal'::regtype = ANY (p.proargtypes::oid[]) AND p.prorettype <> 'internal'::regtype
ORDER BY p.oid::regprocedure::text, r.round;
-- Every argument type has values: a call with a type the pool lacks would be a NULL call text.
SELECT count(*) AS calls, count(*) FILTER (WHERE call IS NULL) AS without_values FROM fuzz_calls;

-- One call, as its own statement: the error it ends in, if any, is recorded. A call that changed
-- the source configuration is undone, so that the next ones read the fuzz shop again.
CREATE FUNCTION pg_temp.fuzz_one(call_id int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c text;
    state text := '00000';
    msg text;
BEGIN
    SELECT call INTO c FROM fuzz_calls WHERE id = call_id;
    BEGIN
        EXECUTE c;
    EXCEPTION
        WHEN query_canceled THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    END;
    UPDATE fuzz_calls SET sqlstate = state, message = left(msg, 200) WHERE id = call_id;
    IF c LIKE '%configure_source(%' OR c LIKE '%reset_configuration(%' OR c LIKE '%grant_analytics_access(%' THEN
        SET LOCAL client_min_messages = warning;
        PERFORM configure_source(users_table => 'fuzz.users', orders_table => 'fuzz.orders');
    END IF;
END
$$;
SET statement_timeout = '3s';
SET client_min_messages = error;
\o /dev/null
SELECT format('SELECT pg_temp.fuzz_one(%s)', id) FROM fuzz_calls ORDER BY id \gexec
\o
RESET client_min_messages;
RESET statement_timeout;

-- No crash: the same server, and this connection, lived through all of it.
SELECT pg_postmaster_start_time() = :'started' AS same_server;
-- Every call answered: none unrecorded, none an internal error.
SELECT count(*) FILTER (WHERE sqlstate IS NULL) AS unanswered,
       count(*) FILTER (WHERE sqlstate = 'XX000' OR sqlstate LIKE 'XX%') AS internal_errors
FROM fuzz_calls;
SELECT fn, call, message FROM fuzz_calls WHERE sqlstate LIKE 'XX%' ORDER BY id;
-- The fuzz reached past argument checks: some calls succeeded, and many kinds of error were met.
SELECT count(*) FILTER (WHERE sqlstate = '00000') > 100 AS many_succeeded,
       count(DISTINCT sqlstate) > 8 AS many_kinds_of_error
FROM fuzz_calls;

SET client_min_messages = warning;
SELECT count(*) FROM reset_configuration();
RESET client_min_messages;
DROP SCHEMA fuzz CASCADE;
