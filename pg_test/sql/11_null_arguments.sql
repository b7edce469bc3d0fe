-- Every function of the extension a user can call, called with NULL arguments: a NULL argument
-- gets the function's NULL result (a STRICT function) or a clear error naming the parameter
-- (22004), never an internal error (XX000). Each function is called once per argument with NULL
-- in it (and plain values in the others), and once with NULL in every argument without a
-- default. The source is an empty shop, so that every call is quick.
\set SHOW_CONTEXT never
CREATE SCHEMA nulls;
CREATE TABLE nulls.users (user_id bigint, registered_at timestamptz);
CREATE TABLE nulls.orders (order_id bigint, user_id bigint, created_at timestamptz, status text,
                           total_amount numeric(12,2));
SET client_min_messages = warning;
SELECT count(*) > 0 AS configured FROM configure_source(users_table => 'nulls.users',
                                                        orders_table => 'nulls.orders');
CREATE TEMP TABLE null_calls (fn text, null_arg text, sqlstate text, message text);
DO $$
DECLARE
    f record;
    k int;
    args text[];
    ty text;
    call text;
    state text;
    msg text;
BEGIN
    FOR f IN
        SELECT p.proname, p.pronargs, p.pronargdefaults, p.proargnames,
               p.proargtypes::oid[] AS types
        FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
        JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'cda_analytics'
        WHERE p.prokind = 'f' AND p.proname NOT LIKE '\_%'
          AND NOT 'internal'::regtype = ANY (p.proargtypes::oid[])
        ORDER BY p.proname, p.oid
    LOOP
        -- Call k: NULL in argument k; the other arguments without a default get a plain value
        -- of their type, those with one keep it. Call 0: NULL in every argument without one.
        FOR k IN 0 .. f.pronargs LOOP
            args := '{}';
            FOR j IN 1 .. f.pronargs LOOP
                ty := format_type(f.types[array_lower(f.types, 1) + j - 1], NULL);
                IF j = k OR (k = 0 AND j <= f.pronargs - f.pronargdefaults) THEN
                    args := args || format('%I => NULL::%s', f.proargnames[j], ty);
                ELSIF j <= f.pronargs - f.pronargdefaults THEN
                    args := args || format('%I => %s::%s', f.proargnames[j],
                        CASE ty WHEN 'text' THEN quote_literal('x')
                                WHEN 'date' THEN quote_literal('2024-01-01')
                                WHEN 'boolean' THEN 'false'
                                WHEN 'text[]' THEN quote_literal('{x}')
                                WHEN 'regclass' THEN quote_literal('nulls.orders')
                                ELSE '1' END, ty);
                END IF;
            END LOOP;
            call := format('SELECT * FROM %I(%s)', f.proname, array_to_string(args, ', '));
            state := '00000';
            msg := NULL;
            BEGIN
                EXECUTE call;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
            END;
            INSERT INTO null_calls VALUES (f.proname,
                CASE WHEN k = 0 THEN 'all without a default' ELSE f.proargnames[k] END, state, msg);
        END LOOP;
    END LOOP;
END $$;
RESET client_min_messages;
-- How many calls were made, and how they were answered.
SELECT count(*) > 150 AS many_calls, count(DISTINCT fn) > 40 AS many_functions FROM null_calls;
-- None is an internal error.
SELECT fn, null_arg, message FROM null_calls WHERE sqlstate = 'XX000' ORDER BY fn, null_arg;
-- The required arguments of functions that take optional ones say so by name.
SELECT fn, null_arg, message FROM null_calls
WHERE sqlstate = '22004' AND fn IN ('churn_user', 'clv_fit', 'calculate_all_anomalies')
  AND null_arg <> 'all without a default'
ORDER BY fn, null_arg;
SELECT count(*) AS settings FROM reset_configuration();
DROP SCHEMA nulls CASCADE;
