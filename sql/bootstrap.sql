-- Tables of cda_analytics, created before any function. Every object lives in the schema the
-- extension was created in (@extschema@), and every reference to it is schema-qualified.

-- Where the source data lives and how to read it: one row per database, so every session and a
-- pg_cron job see the same mapping. No row means the defaults, which live in one place, the Rust
-- code (src/source/config.rs), and are listed by cda_configuration(). Change it with configure_source()
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
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- The role that set the configuration: it must be able to read every table and column the
    -- configuration names, when it sets it and whenever a refresh reads them, so that nobody can
    -- point a refresh run by a more privileged role (the owner's nightly job) at data the
    -- configuring role may not read.
    configured_by        name    NOT NULL DEFAULT CURRENT_USER
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cda_config', '');

-- Where the order items and products are (recommendations, price elasticity): one row per
-- database, no row meaning the defaults (order_items and products beside the orders, see
-- src/source/items.rs). Change it with configure_items(), which validates before storing;
-- reset_configuration() goes back.
CREATE TABLE @extschema@.cda_item_config (
    singleton              boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    order_id_column        text NOT NULL,
    items_schema           text NOT NULL,
    items_table            text NOT NULL,
    item_order_id_column   text NOT NULL,
    item_product_id_column text NOT NULL,
    quantity_column        text NOT NULL,
    unit_price_column      text NOT NULL,
    products_schema        text NOT NULL,
    products_table         text NOT NULL,
    product_id_column      text NOT NULL,
    category_column        text NOT NULL,
    -- A boolean column of the products, true for what is not a product; NULL for none.
    non_product_column     text,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    -- The role that set it, which must be able to read every column it names (as cda_config's).
    configured_by          name NOT NULL DEFAULT CURRENT_USER
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cda_item_config', '');

-- One row per user: retrospective lifetime value as of as_of_date, refreshed atomically by
-- calculate_all_ltv(); listing, filtering and paging users is plain SQL over this view. It reads
-- the stored rows (ml_user_ltv_rows) with the as-of date of the run that wrote them
-- (ml_ltv_as_of), and derives days_since_last_order from both: what moves with the as-of day by
-- itself is not stored, so a refresh rewrites only the users whose values changed.
CREATE TABLE @extschema@.ml_user_ltv_rows (
    user_id                bigint      PRIMARY KEY,
    -- A 128-bit hash of the values below (core's ltv::stored::fingerprint), which the next
    -- refresh compares with what it computed to find the rows it has to rewrite. Second, so that
    -- reading it does not take apart the rest of the row.
    fingerprint            bytea       NOT NULL,
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
    horizon_3m_complete    boolean     NOT NULL,
    horizon_6m_complete    boolean     NOT NULL,
    horizon_12m_complete   boolean     NOT NULL,
    orders_before_signup   integer     NOT NULL,
    segment                text        NOT NULL
);
-- Only the primary key: every secondary index costs time on each refresh for every row it
-- rewrites (BENCHMARKS.md). Add the indexes your queries need here; the refresh maintains them.

-- The as-of date and time of the refresh that wrote ml_user_ltv_rows: one row once a refresh ran.
CREATE TABLE @extschema@.ml_ltv_as_of (
    singleton     boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    as_of_date    date        NOT NULL,
    calculated_at timestamptz NOT NULL
);

-- The as-of values come from scalar subqueries, which run once per query (as InitPlans, also in
-- a parallel scan): joined instead, the one-row table was planned as thousands of rows and
-- rescanned for every user, 7x the cost of a scan of the stored rows.
CREATE VIEW @extschema@.ml_user_ltv AS
    SELECT r.user_id, r.signup_date, r.revenue_3m, r.revenue_6m, r.revenue_12m, r.lifetime_revenue,
           r.orders_3m, r.orders_6m, r.orders_12m, r.orders_lifetime, r.avg_order_value_3m,
           r.avg_order_value_6m, r.avg_order_value_12m, r.avg_order_value_lifetime,
           r.first_order_date, r.last_order_date,
           (SELECT a.as_of_date FROM @extschema@.ml_ltv_as_of a) - r.last_order_date
               AS days_since_last_order,
           r.horizon_3m_complete, r.horizon_6m_complete, r.horizon_12m_complete,
           r.orders_before_signup, r.segment,
           (SELECT a.as_of_date FROM @extschema@.ml_ltv_as_of a) AS as_of_date,
           (SELECT a.calculated_at FROM @extschema@.ml_ltv_as_of a) AS calculated_at
    FROM @extschema@.ml_user_ltv_rows r;

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
    distribution_bins         integer[]   NOT NULL,
    -- Stored rows this run wrote and removed; a changed row counts in both, and the rows of
    -- users whose values did not change stay as they were.
    rows_written              bigint      NOT NULL,
    rows_removed              bigint      NOT NULL
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

-- The RFM segment map: score boxes, first match in priority order wins. Empty means the default
-- map (rfm_segment_rules() lists the one in effect, src/core has the defaults); to change it,
-- copy the defaults in and edit them:
--   INSERT INTO rfm_segment_map SELECT priority, segment, r_min, r_max, f_min, f_max, m_min, m_max
--   FROM rfm_segment_rules();
-- Users whose scores match no rule of a custom map are in segment 'Others'.
CREATE TABLE @extschema@.rfm_segment_map (
    priority integer  PRIMARY KEY,
    segment  text     NOT NULL CHECK (segment <> '' AND segment NOT IN ('Others', 'No Orders')),
    r_min    smallint NOT NULL CHECK (r_min BETWEEN 1 AND 5),
    r_max    smallint NOT NULL CHECK (r_max BETWEEN 1 AND 5),
    f_min    smallint NOT NULL CHECK (f_min BETWEEN 1 AND 5),
    f_max    smallint NOT NULL CHECK (f_max BETWEEN 1 AND 5),
    m_min    smallint NOT NULL CHECK (m_min BETWEEN 1 AND 5),
    m_max    smallint NOT NULL CHECK (m_max BETWEEN 1 AND 5),
    CHECK (r_min <= r_max AND f_min <= f_max AND m_min <= m_max)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rfm_segment_map', '');

-- One row per calculate_all_rfm() run, with the breakpoints its scores came from: element i of
-- each array is the value a customer needs for score i + 1 (for recency: at most that many days),
-- NULL when no customer reached that score. calculate_user_rfm() scores against the latest run.
CREATE TABLE @extschema@.ml_rfm_runs (
    run_id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    as_of_date              date        NOT NULL,
    monetary                text        NOT NULL CHECK (monetary IN ('total', 'average')),
    users                   bigint      NOT NULL,
    customers_scored        bigint      NOT NULL,
    users_without_orders    bigint      NOT NULL,
    recency_breakpoints     integer[]   NOT NULL,
    frequency_breakpoints   bigint[]    NOT NULL,
    monetary_breakpoints    numeric[]   NOT NULL,
    -- The monetary breakpoints as exact fractions of minor units (averages do not end).
    monetary_breakpoint_num bigint[]    NOT NULL,
    monetary_breakpoint_den bigint[]    NOT NULL,
    segment_map             text        NOT NULL,
    duration_ms             double precision NOT NULL,
    -- Stored rows this run wrote and removed (a changed row counts in both).
    rows_written            bigint      NOT NULL,
    rows_removed            bigint      NOT NULL,
    finished_at             timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

-- One row per user as of the latest calculate_all_rfm() run. Users without a successful order
-- have segment 'No Orders' and no recency, monetary value or scores. A view, like ml_user_ltv:
-- the stored rows (ml_user_rfm_rows) keep the last order's date, from which recency_days is
-- derived with the run's as-of date (ml_rfm_as_of), so a refresh rewrites only the users whose
-- values or scores changed.
CREATE TABLE @extschema@.ml_user_rfm_rows (
    user_id         bigint   PRIMARY KEY,
    -- core's stored::Fingerprint of the values below, compared by the next refresh; second, so
    -- that reading it does not take apart the rest of the row.
    fingerprint     bytea    NOT NULL,
    last_order_date date,
    frequency       integer  NOT NULL,
    revenue         numeric  NOT NULL,
    monetary        numeric,
    r_score         smallint CHECK (r_score BETWEEN 1 AND 5),
    f_score         smallint CHECK (f_score BETWEEN 1 AND 5),
    m_score         smallint CHECK (m_score BETWEEN 1 AND 5),
    rfm_cell        text,
    segment         text     NOT NULL
);

-- The as-of date and run of the refresh that wrote ml_user_rfm_rows: one row once a refresh ran.
CREATE TABLE @extschema@.ml_rfm_as_of (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    as_of_date date    NOT NULL,
    run_id     bigint  NOT NULL
);

-- Scalar subqueries for the as-of values, as in ml_user_ltv.
CREATE VIEW @extschema@.ml_user_rfm AS
    SELECT r.user_id, (SELECT a.as_of_date FROM @extschema@.ml_rfm_as_of a) - r.last_order_date
               AS recency_days,
           r.frequency, r.revenue, r.monetary, r.r_score, r.f_score, r.m_score, r.rfm_cell, r.segment,
           (SELECT a.as_of_date FROM @extschema@.ml_rfm_as_of a) AS as_of_date,
           (SELECT a.run_id FROM @extschema@.ml_rfm_as_of a) AS run_id
    FROM @extschema@.ml_user_rfm_rows r;

-- Fitted K-means models, one row per version: kmeans_fit() adds the next version of a name, and
-- kmeans_assign() uses the latest. Features are log1p'd where log1p is true, then standardised
-- with feature_mean and feature_scale; centroids are in that standardised space (k rows in
-- cluster order), centroids_in_units in feature units.
CREATE TABLE @extschema@.ml_kmeans_models (
    model_name           text        NOT NULL,
    version              integer     NOT NULL,
    k                    integer     NOT NULL,
    features             text[]      NOT NULL,
    log1p                boolean[]   NOT NULL,
    feature_mean         float8[]    NOT NULL,
    feature_scale        float8[]    NOT NULL,
    centroids            float8[]    NOT NULL,
    centroids_in_units   float8[]    NOT NULL,
    cluster_names        text[]      NOT NULL,
    seed                 bigint      NOT NULL,
    snapshot_date        date        NOT NULL,
    users_in_snapshot    bigint      NOT NULL,
    fitted_on_users      bigint      NOT NULL,
    inertia              float8      NOT NULL,
    -- The silhouette of each k tried (k chosen by silhouette), or of the given k.
    candidate_k          integer[]   NOT NULL,
    candidate_silhouette float8[]    NOT NULL,
    k_chosen_by          text        NOT NULL CHECK (k_chosen_by IN ('given', 'silhouette')),
    algorithm            text        NOT NULL DEFAULT 'linfa-clustering 0.8 k-means++ (10 runs)',
    fitted_at            timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (model_name, version)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ml_kmeans_models', '');

-- One row per clustered user, from the latest calculate_all_clusters().
CREATE TABLE @extschema@.ml_user_clusters (
    user_id       bigint  PRIMARY KEY,
    cluster       integer NOT NULL,
    cluster_name  text    NOT NULL,
    distance      float8  NOT NULL,
    model_name    text    NOT NULL,
    model_version integer NOT NULL,
    as_of_date    date    NOT NULL
);

-- Fitted customer-base models (clv_fit), one per name; a refit replaces the row.
CREATE TABLE @extschema@.ml_clv_models (
    model_name      text        PRIMARY KEY CHECK (model_name <> ''),
    model           text        NOT NULL CHECK (model IN ('bgnbd', 'mbgnbd', 'pareto_nbd', 'gamma_gamma')),
    time_unit       text        NOT NULL CHECK (time_unit IN ('day', 'week')),
    calibration_end date        NOT NULL,
    parameters      jsonb       NOT NULL,
    std_errors      jsonb       NOT NULL,
    log_likelihood  float8      NOT NULL,
    customers       bigint      NOT NULL CHECK (customers > 0),
    distinct_rows   bigint      NOT NULL,
    penalizer       float8      NOT NULL CHECK (penalizer >= 0),
    iterations      integer     NOT NULL,
    gradient_norm   float8      NOT NULL,
    starts          integer     NOT NULL,
    starts_at_best  integer     NOT NULL,
    fit_ms          float8      NOT NULL,
    fitted_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ml_clv_models', '');

-- One row per customer, from the latest calculate_all_clv().
CREATE TABLE @extschema@.ml_user_clv (
    user_id                 bigint  PRIMARY KEY,
    frequency               integer NOT NULL,
    recency                 float8  NOT NULL,
    t                       float8  NOT NULL,
    monetary_value          float8,
    probability_alive       float8  NOT NULL,
    expected_purchases      float8  NOT NULL,
    probability_no_purchase float8,
    expected_spend          float8,
    clv                     float8,
    model_name              text    NOT NULL,
    spend_model_name        text,
    time_unit               text    NOT NULL,
    horizon_months          integer NOT NULL,
    monthly_discount        float8  NOT NULL,
    as_of_date              date    NOT NULL
);

-- The judged weeks of the latest calculate_all_anomalies(): one row per user and week.
CREATE TABLE @extschema@.ml_user_anomalies_weekly (
    user_id              bigint  NOT NULL,
    week_start           date    NOT NULL,
    orders               integer NOT NULL,
    spend                float8  NOT NULL,
    categories           integer,
    orders_z             float8,
    spend_z              float8,
    spend_robust_z       float8,
    orders_ratio         float8,
    spend_ratio          float8,
    anomaly_score        float8  NOT NULL,
    is_anomaly           boolean NOT NULL,
    triggers             text[]  NOT NULL,
    insufficient_history boolean NOT NULL,
    as_of_date           date    NOT NULL,
    PRIMARY KEY (user_id, week_start)
);

-- Trained churn and purchase models (churn_train), one per name; a retrain replaces the row and
-- raises its version. Features are log1p'd where log1p is true, then standardised with
-- feature_mean and feature_scale. A logistic model has intercept and weights (one per feature);
-- a tree has its nodes as parallel arrays (tree_left = 0 marks a leaf; a row goes left when its
-- standardised feature is below tree_threshold; tree_value is the training rows' positive rate).
CREATE TABLE @extschema@.ml_churn_models (
    model_name           text        PRIMARY KEY CHECK (model_name <> ''),
    version              integer     NOT NULL,
    target               text        NOT NULL CHECK (target IN ('churn', 'purchase')),
    classifier           text        NOT NULL CHECK (classifier IN ('logistic', 'tree')),
    features             text[]      NOT NULL,
    log1p                boolean[]   NOT NULL,
    feature_mean         float8[]    NOT NULL,
    feature_scale        float8[]    NOT NULL,
    intercept            float8,
    weights              float8[],
    tree_feature         integer[],
    tree_threshold       float8[],
    tree_left            integer[],
    tree_right           integer[],
    tree_value           float8[],
    threshold            float8      NOT NULL,
    label_days           integer     NOT NULL,
    min_tenure_days      integer     NOT NULL,
    active_days          integer     NOT NULL,
    -- The purchase model refitted at every snapshot for the p_alive and expected_purchases
    -- features, NULL when they are not used.
    btyd_model           text        CHECK (btyd_model IN ('bgnbd', 'mbgnbd', 'pareto_nbd')),
    -- That model as the latest scoring refresh fitted it (weeks), and the as-of date it was
    -- fitted to: churn_user() on that date reuses it instead of refitting on every customer.
    btyd_fit_as_of       date,
    btyd_fit_parameters  float8[],
    as_of_date           date        NOT NULL,
    training_snapshots   date[]      NOT NULL,
    validation_snapshots date[]      NOT NULL,
    eligible_training_rows   bigint  NOT NULL,
    eligible_validation_rows bigint  NOT NULL,
    -- Rows are sampled (by a hash of user and day, fixed by seed) down to max_training_rows.
    sample_rate          float8      NOT NULL,
    seed                 bigint      NOT NULL,
    train_ms             float8      NOT NULL,
    -- Milliseconds spent reading the orders, fitting the purchase model at every snapshot,
    -- building the features and labels, and fitting and evaluating the classifiers.
    phase_ms             float8[]    NOT NULL,
    trained_at           timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ml_churn_models', '');

-- Each scorer's quality when the model was trained: the logistic regression, the tree and the
-- P(alive) baseline, on the training rows (where the threshold was chosen) and the validation
-- rows (later snapshots, never trained on).
CREATE TABLE @extschema@.ml_churn_model_metrics (
    model_name      text    NOT NULL REFERENCES @extschema@.ml_churn_models ON DELETE CASCADE,
    scorer          text    NOT NULL CHECK (scorer IN ('logistic', 'tree', 'p_alive')),
    split           text    NOT NULL CHECK (split IN ('training', 'validation')),
    chosen          boolean NOT NULL,
    rows            bigint  NOT NULL,
    positives       bigint  NOT NULL,
    roc_auc         float8,
    pr_auc          float8,
    threshold       float8  NOT NULL,
    precision       float8,
    recall          float8,
    f1              float8,
    true_positives  bigint  NOT NULL,
    false_positives bigint  NOT NULL,
    true_negatives  bigint  NOT NULL,
    false_negatives bigint  NOT NULL,
    top_decile_lift float8,
    PRIMARY KEY (model_name, scorer, split)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ml_churn_model_metrics', '');

-- One row per customer from the latest calculate_all_churn(): the probability of no successful
-- order in the model's label window, its band, and the features that raise it most.
CREATE TABLE @extschema@.ml_churn_scores (
    user_id       bigint      PRIMARY KEY,
    probability   float8      NOT NULL CHECK (probability BETWEEN 0 AND 1),
    risk_band     text        NOT NULL CHECK (risk_band IN ('critical', 'high', 'medium', 'low')),
    -- Whether the customer met the training eligibility on the as-of date (first order at
    -- least min_tenure_days before it, an order in the last active_days); the others are scored
    -- outside the population the model was validated on.
    eligible      boolean     NOT NULL,
    top_reasons   text[]      NOT NULL,
    model_name    text        NOT NULL,
    model_version integer     NOT NULL,
    as_of_date    date        NOT NULL,
    scored_at     timestamptz NOT NULL
);

-- One row per customer from the latest calculate_all_purchase(): the probability of a
-- successful order in the model's label window.
CREATE TABLE @extschema@.ml_purchase_scores (
    user_id       bigint      PRIMARY KEY,
    probability   float8      NOT NULL CHECK (probability BETWEEN 0 AND 1),
    band          text        NOT NULL CHECK (band IN ('high', 'medium', 'low')),
    eligible      boolean     NOT NULL,
    top_reasons   text[]      NOT NULL,
    model_name    text        NOT NULL,
    model_version integer     NOT NULL,
    as_of_date    date        NOT NULL,
    scored_at     timestamptz NOT NULL
);

-- Trained recommenders (train_recommender()): one row per model, with its algorithm, parameters
-- and training window. Its products (with their popularity, the cold-start answer) and each
-- product's stored neighbours (item-kNN's similarities, or the largest weights of EASE's item
-- matrix) are in the two tables after it.
CREATE TABLE @extschema@.ml_recommender_models (
    model_name    text        PRIMARY KEY CHECK (model_name <> ''),
    algorithm     text        NOT NULL CHECK (algorithm IN ('popularity', 'popularity_all', 'buy_again',
                                                            'item_knn_cosine', 'item_knn_bm25', 'ease', 'default')),
    parameters    jsonb       NOT NULL,
    -- Trained on the order lines up to and including this day.
    as_of_date    date        NOT NULL,
    customers     bigint      NOT NULL,
    products      bigint      NOT NULL,
    pairs         bigint      NOT NULL,
    lines_left_out bigint     NOT NULL,
    trained_at    timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ml_recommender_models', '');

-- Each product of a model: its popularity, and its stored neighbours, best first, as two arrays
-- of the same length (one row per product: a model of 100,000 products with 50 neighbours each
-- is 100,000 rows, written and read in a second or two, not 5 million).
CREATE TABLE @extschema@.ml_recommender_products (
    model_name   text     NOT NULL REFERENCES @extschema@.ml_recommender_models ON DELETE CASCADE,
    product_id   bigint   NOT NULL,
    -- Distinct buyers over the model's popularity window.
    popularity   float8   NOT NULL,
    neighbor_ids bigint[] NOT NULL,
    weights      float8[] NOT NULL,
    PRIMARY KEY (model_name, product_id),
    CHECK (pg_catalog.cardinality(neighbor_ids) = pg_catalog.cardinality(weights))
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ml_recommender_products', '');

-- The stored neighbours one per row: item-kNN's similarities, or the largest weights of EASE's
-- row of its item matrix, ranked from 1.
CREATE VIEW @extschema@.ml_recommender_neighbors AS
SELECT p.model_name, p.product_id, n.rank::integer AS rank, n.neighbor_id, n.weight
FROM @extschema@.ml_recommender_products p,
     ROWS FROM (pg_catalog.unnest(p.neighbor_ids), pg_catalog.unnest(p.weights)) WITH ORDINALITY AS n(neighbor_id, weight, rank);

-- Every customer's top products from the latest calculate_all_recommendations(), with the
-- customer's own products that led to each.
CREATE TABLE @extschema@.ml_user_recommendations (
    user_id      bigint      NOT NULL,
    rank         integer     NOT NULL,
    product_id   bigint      NOT NULL,
    score        float8      NOT NULL,
    because_of   bigint[]    NOT NULL,
    model_name   text        NOT NULL,
    as_of_date   date        NOT NULL,
    computed_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, rank)
);

-- For BI tools: one row per user with the latest result of every capability, plain typed
-- columns and no arrays, so that Metabase, Grafana or a spreadsheet can filter and chart it
-- without knowing the tables. Every user of the latest LTV refresh (the one refresh that covers
-- every user); a capability that has not run gives NULLs.
CREATE VIEW @extschema@.customer_latest AS
SELECT l.user_id, l.signup_date, l.lifetime_revenue, l.revenue_12m, l.orders_lifetime,
       l.avg_order_value_lifetime, l.first_order_date, l.last_order_date, l.days_since_last_order,
       l.segment AS value_segment, l.as_of_date AS ltv_as_of,
       r.segment AS rfm_segment, r.r_score, r.f_score, r.m_score, r.as_of_date AS rfm_as_of,
       c.cluster_name, c.model_name AS cluster_model, c.as_of_date AS cluster_as_of,
       v.clv, v.probability_alive, v.expected_purchases, v.as_of_date AS clv_as_of,
       ch.probability AS churn_probability, ch.risk_band AS churn_risk_band, ch.as_of_date AS churn_as_of,
       p.probability AS purchase_probability, p.band AS purchase_band,
       coalesce(a.anomalous_weeks, 0)::integer AS anomalous_weeks, a.last_anomalous_week
FROM @extschema@.ml_user_ltv l
LEFT JOIN @extschema@.ml_user_rfm r ON r.user_id = l.user_id
LEFT JOIN @extschema@.ml_user_clusters c ON c.user_id = l.user_id
LEFT JOIN @extschema@.ml_user_clv v ON v.user_id = l.user_id
LEFT JOIN @extschema@.ml_churn_scores ch ON ch.user_id = l.user_id
LEFT JOIN @extschema@.ml_purchase_scores p ON p.user_id = l.user_id
LEFT JOIN (SELECT w.user_id, count(*) AS anomalous_weeks, max(w.week_start) AS last_anomalous_week
           FROM @extschema@.ml_user_anomalies_weekly w WHERE w.is_anomaly GROUP BY w.user_id) a
       ON a.user_id = l.user_id;

-- For time-series panels: per day, the LTV and RFM refreshes that finished that day (in the
-- session's time zone), with what the last of each read and how long it took.
CREATE VIEW @extschema@.run_history_daily AS
WITH ltv AS (
    SELECT DISTINCT ON (r.finished_at::date) r.finished_at::date AS day,
           count(*) OVER (PARTITION BY r.finished_at::date) AS runs,
           r.duration_ms, r.users, r.orders_counted,
           r.orders_read - r.orders_counted AS orders_left_out, r.as_of_date
    FROM @extschema@.ml_ltv_runs r
    ORDER BY r.finished_at::date, r.finished_at DESC
), rfm AS (
    SELECT DISTINCT ON (r.finished_at::date) r.finished_at::date AS day,
           count(*) OVER (PARTITION BY r.finished_at::date) AS runs,
           r.duration_ms, r.customers_scored, r.as_of_date
    FROM @extschema@.ml_rfm_runs r
    ORDER BY r.finished_at::date, r.finished_at DESC
)
SELECT coalesce(l.day, f.day) AS day,
       coalesce(l.runs, 0)::integer AS ltv_runs, l.duration_ms AS ltv_duration_ms, l.users AS ltv_users,
       l.orders_counted AS ltv_orders_counted, l.orders_left_out AS ltv_orders_left_out,
       l.as_of_date AS ltv_as_of,
       coalesce(f.runs, 0)::integer AS rfm_runs, f.duration_ms AS rfm_duration_ms,
       f.customers_scored AS rfm_customers_scored, f.as_of_date AS rfm_as_of
FROM ltv l FULL JOIN rfm f ON f.day = l.day;

-- Notifications: an outbox that queue_digest() (a pg_cron job after the nightly refreshes)
-- fills, and the HTTP server's notifier sends (Telegram). A message is sent to each recipient at
-- most once: the sender records the delivery only after the provider accepted it, in one
-- transaction with nothing else, so a crash between the two resends rather than loses it.
CREATE TABLE @extschema@.cda_notifications (
    notification_id bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('digest')),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- Plain text, at most 4,096 characters (Telegram's limit for one message).
    body            text        NOT NULL CHECK (pg_catalog.length(body) BETWEEN 1 AND 4096),
    -- What the digest reported, so that the next one reports only what is new: the LTV run, the
    -- latest anomalous week, the last pg_cron run (cron.job_run_details.runid).
    last_ltv_run_id  bigint,
    last_anomaly_week date,
    last_cron_run_id bigint
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cda_notifications', '');

CREATE TABLE @extschema@.cda_notification_deliveries (
    notification_id bigint      NOT NULL REFERENCES @extschema@.cda_notifications ON DELETE CASCADE,
    channel         text        NOT NULL CHECK (channel IN ('telegram')),
    recipient       text        NOT NULL,
    sent_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    provider_message_id text,
    PRIMARY KEY (notification_id, channel, recipient)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cda_notification_deliveries', '');

-- The customers at high churn risk when the last digest was made, so that the next reports only
-- the ones newly at risk.
CREATE TABLE @extschema@.cda_digest_high_risk (
    user_id bigint PRIMARY KEY
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cda_digest_high_risk', '');
