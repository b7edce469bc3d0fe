-- C-level functions: the two aggregates that read the LTV source rows (src/ltv/aggregate.rs
-- explains why they are aggregates and why they take raw values), and the in-memory row sources
-- of the LTV and CLV refreshes. Internal: calculate_all_ltv() and
-- calculate_user_ltv() generate the queries that call them. The support functions are IMMUTABLE
-- like PostgreSQL's own (numeric_avg_accum and friends): their result depends on their
-- arguments only, the state included.

CREATE FUNCTION @extschema@._ltv_users_sfunc(internal, bigint, timestamptz, integer)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_users_sfunc';
CREATE FUNCTION @extschema@._ltv_users_sfunc(internal, bigint, timestamp, integer)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_users_sfunc';
-- Hands the table over in memory (src/aggregates.rs), as _ltv_orders_final does the totals.
CREATE FUNCTION @extschema@._ltv_users_final(internal)
RETURNS bytea LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_users_final';

-- _ltv_users(user_id, signup as a timestamp, as_of day): the users of a run, encoded.
CREATE AGGREGATE @extschema@._ltv_users(bigint, timestamptz, integer) (
    SFUNC = @extschema@._ltv_users_sfunc, STYPE = internal,
    FINALFUNC = @extschema@._ltv_users_final, FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);
CREATE AGGREGATE @extschema@._ltv_users(bigint, timestamp, integer) (
    SFUNC = @extschema@._ltv_users_sfunc, STYPE = internal,
    FINALFUNC = @extschema@._ltv_users_final, FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);

-- VOLATILE: for a large run it folds into totals in shared memory named by its users argument
-- (src/ltv/shared_totals.rs), which its caller reads afterwards.
CREATE FUNCTION @extschema@._ltv_orders_sfunc(internal, bytea, bigint, timestamptz, numeric, boolean, integer)
RETURNS internal LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_orders_sfunc';
CREATE FUNCTION @extschema@._ltv_orders_sfunc(internal, bytea, bigint, timestamp, numeric, boolean, integer)
RETURNS internal LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_orders_sfunc';
-- A combine function for an internal state must not be STRICT.
CREATE FUNCTION @extschema@._ltv_orders_combine(internal, internal)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_orders_combine';
CREATE FUNCTION @extschema@._ltv_orders_serial(internal)
RETURNS bytea LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_orders_serial';
CREATE FUNCTION @extschema@._ltv_orders_deserial(bytea, internal)
RETURNS internal LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_orders_deserial';
-- The final function hands the merged totals to its caller in the same backend and returns a
-- token for them (the encoded totals in a parallel worker): VOLATILE, and it takes the state
-- (FINALFUNC_MODIFY = READ_WRITE). Not STRICT: no rows at all give a NULL state.
CREATE FUNCTION @extschema@._ltv_orders_final(internal)
RETURNS bytea LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_orders_final';

-- _ltv_orders(users, user_id, created_at, amount, status_is_null, scale): per-user order sums
-- against the users of _ltv_users, parallel-capable.
CREATE AGGREGATE @extschema@._ltv_orders(bytea, bigint, timestamptz, numeric, boolean, integer) (
    SFUNC = @extschema@._ltv_orders_sfunc, STYPE = internal,
    COMBINEFUNC = @extschema@._ltv_orders_combine,
    SERIALFUNC = @extschema@._ltv_orders_serial, DESERIALFUNC = @extschema@._ltv_orders_deserial,
    FINALFUNC = @extschema@._ltv_orders_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE
);
CREATE AGGREGATE @extschema@._ltv_orders(bytea, bigint, timestamp, numeric, boolean, integer) (
    SFUNC = @extschema@._ltv_orders_sfunc, STYPE = internal,
    COMBINEFUNC = @extschema@._ltv_orders_combine,
    SERIALFUNC = @extschema@._ltv_orders_serial, DESERIALFUNC = @extschema@._ltv_orders_deserial,
    FINALFUNC = @extschema@._ltv_orders_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE
);

-- _ltv_orders(users, user_id, created_at, amount, status, successful, scale): the same, for a
-- status column whose equality is byte equality (text or varchar under a deterministic
-- collation): the fold compares the status with the successful ones itself, which costs less
-- than the executor's `= ANY`, and skips the others unread. NULL statuses are counted apart.
CREATE FUNCTION @extschema@._ltv_orders_sfunc(internal, bytea, bigint, timestamptz, numeric, text, text[], integer)
RETURNS internal LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_orders_status_sfunc';
CREATE FUNCTION @extschema@._ltv_orders_sfunc(internal, bytea, bigint, timestamp, numeric, text, text[], integer)
RETURNS internal LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_orders_status_sfunc';
CREATE AGGREGATE @extschema@._ltv_orders(bytea, bigint, timestamptz, numeric, text, text[], integer) (
    SFUNC = @extschema@._ltv_orders_sfunc, STYPE = internal,
    COMBINEFUNC = @extschema@._ltv_orders_combine,
    SERIALFUNC = @extschema@._ltv_orders_serial, DESERIALFUNC = @extschema@._ltv_orders_deserial,
    FINALFUNC = @extschema@._ltv_orders_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE
);
CREATE AGGREGATE @extschema@._ltv_orders(bytea, bigint, timestamp, numeric, text, text[], integer) (
    SFUNC = @extschema@._ltv_orders_sfunc, STYPE = internal,
    COMBINEFUNC = @extschema@._ltv_orders_combine,
    SERIALFUNC = @extschema@._ltv_orders_serial, DESERIALFUNC = @extschema@._ltv_orders_deserial,
    FINALFUNC = @extschema@._ltv_orders_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE
);

-- _stored_fingerprints(user_id, fingerprint, ctid): a results table's stored rows with their
-- fingerprints and places, which calculate_all_ltv() and calculate_all_rfm() compare with the rows
-- they computed, removing changed rows by place (src/stored_rows.rs); handed over in memory.
CREATE FUNCTION @extschema@._stored_fingerprints_sfunc(internal, bigint, bytea, tid)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_stored_fingerprints_sfunc';
CREATE FUNCTION @extschema@._stored_fingerprints_final(internal)
RETURNS bytea LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_stored_fingerprints_final';
CREATE AGGREGATE @extschema@._stored_fingerprints(bigint, bytea, tid) (
    SFUNC = @extschema@._stored_fingerprints_sfunc, STYPE = internal,
    FINALFUNC = @extschema@._stored_fingerprints_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE
);

-- The rows calculate_all_ltv() is writing, read by its own INSERT from the backend's memory
-- (src/ltv/write.rs). Internal: any other call is an error.
CREATE FUNCTION @extschema@._ltv_pending_rows(token bigint)
RETURNS TABLE (user_id bigint, signup_date date, revenue_3m numeric, revenue_6m numeric,
    revenue_12m numeric, lifetime_revenue numeric, orders_3m integer, orders_6m integer,
    orders_12m integer, orders_lifetime integer, avg_order_value_3m numeric,
    avg_order_value_6m numeric, avg_order_value_12m numeric, avg_order_value_lifetime numeric,
    first_order_date date, last_order_date date,
    horizon_3m_complete boolean, horizon_6m_complete boolean, horizon_12m_complete boolean,
    orders_before_signup integer, segment text, fingerprint bytea)
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'cda_ltv_pending_rows';

-- The rows calculate_all_clv() is writing, read by its own INSERT from the backend's memory
-- (src/clv/store.rs). Internal: any other call is an error.
CREATE FUNCTION @extschema@._clv_pending_rows(token bigint)
RETURNS TABLE (user_id bigint, frequency integer, recency float8, t float8, monetary_value float8,
    probability_alive float8, expected_purchases float8, probability_no_purchase float8,
    expected_spend float8, clv float8)
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'cda_clv_pending_rows';

-- _order_events(user_id, order time, amount, problem, end day): every counted order as (user,
-- day, amount), the others counted by problem; parallel-capable (src/events.rs). The time comes as
-- a timestamp (a timestamptz when the zone is UTC), whose microseconds give the day.
CREATE FUNCTION @extschema@._order_events_sfunc(internal, bigint, timestamptz, numeric, integer, integer)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_events_sfunc';
CREATE FUNCTION @extschema@._order_events_sfunc(internal, bigint, timestamp, numeric, integer, integer)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_events_sfunc';
CREATE FUNCTION @extschema@._order_events_combine(internal, internal)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_events_combine';
CREATE FUNCTION @extschema@._order_events_serial(internal)
RETURNS bytea LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_events_serial';
CREATE FUNCTION @extschema@._order_events_deserial(bytea, internal)
RETURNS internal LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_events_deserial';
-- Hands the events over in memory, as _ltv_orders_final does the totals.
CREATE FUNCTION @extschema@._order_events_final(internal)
RETURNS bytea LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_events_final';
CREATE AGGREGATE @extschema@._order_events(bigint, timestamptz, numeric, integer, integer) (
    SFUNC = @extschema@._order_events_sfunc, STYPE = internal,
    COMBINEFUNC = @extschema@._order_events_combine,
    SERIALFUNC = @extschema@._order_events_serial, DESERIALFUNC = @extschema@._order_events_deserial,
    FINALFUNC = @extschema@._order_events_final, FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);
CREATE AGGREGATE @extschema@._order_events(bigint, timestamp, numeric, integer, integer) (
    SFUNC = @extschema@._order_events_sfunc, STYPE = internal,
    COMBINEFUNC = @extschema@._order_events_combine,
    SERIALFUNC = @extschema@._order_events_serial, DESERIALFUNC = @extschema@._order_events_deserial,
    FINALFUNC = @extschema@._order_events_final, FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);

-- _known_users(user_id, signup as a timestamp, end day): every user with an id and whether they
-- had signed up by the end day, for the order-events reads (src/events.rs). The final function
-- hands the list over in memory, as _ltv_orders_final does.
CREATE FUNCTION @extschema@._known_users_sfunc(internal, bigint, timestamptz, integer)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_known_users_sfunc';
CREATE FUNCTION @extschema@._known_users_sfunc(internal, bigint, timestamp, integer)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_known_users_sfunc';
CREATE FUNCTION @extschema@._known_users_final(internal)
RETURNS bytea LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_known_users_final';
CREATE AGGREGATE @extschema@._known_users(bigint, timestamptz, integer) (
    SFUNC = @extschema@._known_users_sfunc, STYPE = internal,
    FINALFUNC = @extschema@._known_users_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE
);
CREATE AGGREGATE @extschema@._known_users(bigint, timestamp, integer) (
    SFUNC = @extschema@._known_users_sfunc, STYPE = internal,
    FINALFUNC = @extschema@._known_users_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE
);

-- The rows calculate_all_anomalies() is writing, read by its own INSERT from the backend's memory
-- (src/anomaly/mod.rs). Internal: any other call is an error.
CREATE FUNCTION @extschema@._anomaly_pending_rows(token bigint)
RETURNS TABLE (user_id bigint, week_start date, orders integer, spend float8, categories integer,
    orders_z float8, spend_z float8, spend_robust_z float8, orders_ratio float8, spend_ratio float8,
    anomaly_score float8, is_anomaly boolean, triggers text, insufficient_history boolean)
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'cda_anomaly_pending_rows';

-- The rows calculate_all_rfm() is writing, read by its own INSERT from the backend's memory
-- (src/rfm/store.rs). Internal: any other call is an error.
CREATE FUNCTION @extschema@._rfm_pending_rows(token bigint)
RETURNS TABLE (user_id bigint, fingerprint bytea, last_order_date date, frequency integer,
    revenue numeric, monetary numeric, r_score smallint, f_score smallint, m_score smallint,
    rfm_cell text, segment text)
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'cda_rfm_pending_rows';
