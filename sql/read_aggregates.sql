-- The read wing's C-level aggregates (src/read/): the purchases read's `_ltv_users` and
-- `_ltv_orders` (src/read/purchases/aggregate.rs explains why they are aggregates and why they
-- take raw values), the events read's `_order_events` and `_known_users`
-- (src/read/events/aggregate.rs), the items read's `_order_lines` (src/read/items/aggregate.rs),
-- and the stored rows' `_stored_fingerprints`
-- (src/write/stored_rows.rs). Internal: the refreshes and per-user functions generate the
-- queries that call them. They are plain V1 functions declared here because pgrx's
-- `#[pg_aggregate]` cannot declare a parallel aggregate with an `internal` state (pgrx#2351).
-- The support functions are IMMUTABLE like PostgreSQL's own (numeric_avg_accum and friends):
-- their result depends on their arguments only, the state included.

CREATE FUNCTION @extschema@._ltv_users_sfunc(internal, bigint, timestamptz, integer)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_users_sfunc';
CREATE FUNCTION @extschema@._ltv_users_sfunc(internal, bigint, timestamp, integer)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_ltv_users_sfunc';
-- Hands the table over in memory (src/read/aggregates.rs), as _ltv_orders_final does the totals.
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
-- (src/read/purchases/shared_totals.rs), which its caller reads afterwards.
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
-- they computed, removing changed rows by place (src/write/stored_rows.rs); handed over in memory.
CREATE FUNCTION @extschema@._stored_fingerprints_sfunc(internal, bigint, bytea, tid)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_stored_fingerprints_sfunc';
CREATE FUNCTION @extschema@._stored_fingerprints_final(internal)
RETURNS bytea LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_stored_fingerprints_final';
CREATE AGGREGATE @extschema@._stored_fingerprints(bigint, bytea, tid) (
    SFUNC = @extschema@._stored_fingerprints_sfunc, STYPE = internal,
    FINALFUNC = @extschema@._stored_fingerprints_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE
);

-- _order_events(user_id, order time, amount, problem, end day): every counted order as (user,
-- day, amount), the others counted by problem; parallel-capable (src/read/events/aggregate.rs). The time comes as
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
-- had signed up by the end day, for the order-events reads (src/read/events/aggregate.rs). The final function
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

-- _order_lines(user_id, day, order_id, product_id, quantity, unit_price, problem): every line of
-- the counted orders, the others counted by problem; parallel-capable (src/read/items/aggregate.rs).
CREATE FUNCTION @extschema@._order_lines_sfunc(internal, bigint, integer, bigint, bigint, double precision, double precision, integer)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_lines_sfunc';
CREATE FUNCTION @extschema@._order_lines_combine(internal, internal)
RETURNS internal LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_lines_combine';
CREATE FUNCTION @extschema@._order_lines_serial(internal)
RETURNS bytea LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_lines_serial';
CREATE FUNCTION @extschema@._order_lines_deserial(bytea, internal)
RETURNS internal LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_lines_deserial';
-- Hands the lines over in memory, as _order_events_final does the events.
CREATE FUNCTION @extschema@._order_lines_final(internal)
RETURNS bytea LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cda_lines_final';
CREATE AGGREGATE @extschema@._order_lines(bigint, integer, bigint, bigint, double precision, double precision, integer) (
    SFUNC = @extschema@._order_lines_sfunc, STYPE = internal,
    COMBINEFUNC = @extschema@._order_lines_combine,
    SERIALFUNC = @extschema@._order_lines_serial, DESERIALFUNC = @extschema@._order_lines_deserial,
    FINALFUNC = @extschema@._order_lines_final, FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);
