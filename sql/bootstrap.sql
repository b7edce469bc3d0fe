-- Tables of cda_analytics, created before any function. Every object lives in the schema the
-- extension was created in (@extschema@), and every reference to it is schema-qualified.

-- Where the source data lives and how to read it: one row per database, so every session and a
-- pg_cron job see the same mapping. No row means the defaults, which live in one place, the Rust
-- code (src/config.rs), and are listed by cda_configuration(). Change it with configure_source()
-- and configure_ltv(), which validate before storing; reset_configuration() goes back.
CREATE TABLE @extschema@.cda_config (
    singleton            boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    users_schema         text    NOT NULL,
    users_table          text    NOT NULL,
    user_id_column       text    NOT NULL,
    registered_at_column text    NOT NULL,
    orders_schema        text    NOT NULL,
    orders_table         text    NOT NULL,
    order_user_id_column text    NOT NULL,
    order_date_column    text    NOT NULL,
    status_column        text    NOT NULL,
    amount_column        text    NOT NULL,
    successful_statuses  text[]  NOT NULL,
    time_zone            text    NOT NULL,
    segment_vip          numeric NOT NULL,
    segment_high         numeric NOT NULL,
    segment_medium       numeric NOT NULL,
    segment_low          numeric NOT NULL,
    cac_margin           numeric NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cda_config', '');

-- One row per user: retrospective lifetime value as of as_of_date. Refreshed atomically by
-- calculate_all_ltv(); listing, filtering and paging users is plain SQL over this table.
CREATE TABLE @extschema@.ml_user_ltv (
    user_id                bigint      PRIMARY KEY,
    signup_date            date        NOT NULL,
    revenue_3m             numeric     NOT NULL,
    revenue_6m             numeric     NOT NULL,
    revenue_12m            numeric     NOT NULL,
    lifetime_revenue       numeric     NOT NULL,
    orders_3m              integer     NOT NULL,
    orders_6m              integer     NOT NULL,
    orders_12m             integer     NOT NULL,
    orders_lifetime        integer     NOT NULL,
    avg_order_value_3m     numeric,
    avg_order_value_6m     numeric,
    avg_order_value_12m    numeric,
    avg_order_value_lifetime numeric,
    first_order_date       date,
    last_order_date        date,
    days_since_last_order  integer,
    horizon_3m_complete    boolean     NOT NULL,
    horizon_6m_complete    boolean     NOT NULL,
    horizon_12m_complete   boolean     NOT NULL,
    orders_before_signup   integer     NOT NULL,
    segment                text        NOT NULL,
    as_of_date             date        NOT NULL,
    calculated_at          timestamptz NOT NULL
);
-- Only the primary key: every secondary index costs about a microsecond per user on each refresh
-- (BENCHMARKS.md), and whole-table reports scan anyway. Add the indexes your queries need; the
-- refresh maintains them.

-- One row per calculate_all_ltv() run: what it read, what it counted, what it left out and why.
CREATE TABLE @extschema@.ml_ltv_runs (
    run_id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    as_of_date                date        NOT NULL,
    started_at                timestamptz NOT NULL,
    finished_at               timestamptz NOT NULL,
    duration_ms               double precision NOT NULL,
    users                     bigint      NOT NULL,
    users_read                bigint      NOT NULL,
    users_skipped_null_id     bigint      NOT NULL,
    users_skipped_null_signup bigint      NOT NULL,
    users_skipped_signup_after_as_of bigint NOT NULL,
    orders_read               bigint      NOT NULL,
    orders_counted            bigint      NOT NULL,
    orders_before_signup      bigint      NOT NULL,
    orders_skipped_null_status   bigint   NOT NULL,
    orders_skipped_null_user     bigint   NOT NULL,
    orders_skipped_unknown_user  bigint   NOT NULL,
    orders_skipped_null_date     bigint   NOT NULL,
    orders_skipped_after_as_of   bigint   NOT NULL,
    orders_skipped_null_amount   bigint   NOT NULL,
    orders_skipped_negative_amount bigint NOT NULL,
    orders_skipped_user_left_out bigint   NOT NULL,
    amounts_rounded           bigint      NOT NULL,
    amount_scale              integer     NOT NULL,
    users_source              text        NOT NULL,
    orders_source             text        NOT NULL,
    successful_statuses       text[]      NOT NULL,
    time_zone                 text        NOT NULL,
    segment_vip               numeric     NOT NULL,
    segment_high              numeric     NOT NULL,
    segment_medium            numeric     NOT NULL,
    segment_low               numeric     NOT NULL,
    cohort_12m_revenue_6m     numeric     NOT NULL,
    cohort_12m_revenue_12m    numeric     NOT NULL,
    -- The bin counts whose histograms this run stored in ml_ltv_distribution.
    distribution_bins         integer[]   NOT NULL
);

-- The summary of the latest run, computed during the run from the same rows it wrote, so that
-- get_ltv_summary() is instant and always agrees with ml_user_ltv.
CREATE TABLE @extschema@.ml_ltv_summary (
    horizon           text    PRIMARY KEY CHECK (horizon IN ('3m', '6m', '12m', 'lifetime')),
    run_id            bigint  NOT NULL,
    users_measured    bigint  NOT NULL,
    users_with_orders bigint  NOT NULL,
    revenue_sum       numeric NOT NULL,
    median            double precision,
    p95               double precision
);

-- Histograms of the latest run for the bin counts in ml_ltv_runs.distribution_bins, computed
-- during the run, so that ltv_distribution() reads a few rows; other bin counts are computed from
-- ml_user_ltv when asked for.
CREATE TABLE @extschema@.ml_ltv_distribution (
    metric     text    NOT NULL,
    bins       integer NOT NULL,
    bin        integer NOT NULL,
    range_min  numeric NOT NULL,
    range_max  numeric NOT NULL,
    users      bigint  NOT NULL,
    percentage numeric NOT NULL,
    PRIMARY KEY (metric, bins, bin)
);
