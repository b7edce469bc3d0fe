-- RFM scores, named segments, the per-user function, the summary, migration and sizes.
-- Uses the CDNOW data loaded by 04_cdnow.
SELECT count(*) AS cdnow_users FROM public.users;

-- The default segment map, as documented (first match wins; every cell has a segment).
SELECT * FROM rfm_segment_rules();
SELECT count(*) AS cells, count(DISTINCT rfm_segment_name(r, f, m)) AS segments_reached,
       count(*) FILTER (WHERE rfm_segment_name(r, f, m) = 'Others') AS unmatched
FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m;

-- An independent plain-SQL scoring: score = 1 + floor(5 * (users strictly worse) / customers),
-- with rank() giving "strictly worse + 1"; recency ranks descending (fewer days is better).
CREATE FUNCTION pg_temp.plain_rfm(as_of date, by_average bool)
RETURNS TABLE (user_id bigint, recency_days int, frequency bigint, revenue numeric,
               r_score bigint, f_score bigint, m_score bigint)
LANGUAGE sql AS $$
    WITH o AS (
        SELECT o.user_id, (o.created_at AT TIME ZONE 'UTC')::date AS d, o.total_amount AS amt
        FROM public.orders o JOIN public.users u USING (user_id)
        WHERE o.status IN ('paid', 'shipped', 'completed') AND (o.created_at AT TIME ZONE 'UTC')::date <= as_of
          AND (u.registered_at AT TIME ZONE 'UTC')::date <= as_of
    ), c AS (
        SELECT user_id, as_of - max(d) AS rec, count(*) AS f, sum(amt) AS rev,
               CASE WHEN by_average THEN sum(amt) / count(*) ELSE sum(amt) END AS m
        FROM o GROUP BY user_id
    )
    SELECT user_id, rec, f, rev,
           1 + 5 * (rank() OVER (ORDER BY rec DESC) - 1) / count(*) OVER (),
           1 + 5 * (rank() OVER (ORDER BY f) - 1) / count(*) OVER (),
           1 + 5 * (rank() OVER (ORDER BY m) - 1) / count(*) OVER ()
    FROM c
$$;

-- The extension's scores equal the plain ones for every customer, at two dates and both M options.
SELECT d AS as_of, avg_mode,
       (SELECT count(*) FROM rfm_segment(d, CASE WHEN avg_mode THEN 'average' ELSE 'total' END) WHERE r_score IS NOT NULL) AS scored,
       (SELECT count(*) FROM (
            SELECT user_id, recency_days, frequency, revenue, r_score, f_score, m_score
            FROM rfm_segment(d, CASE WHEN avg_mode THEN 'average' ELSE 'total' END) WHERE r_score IS NOT NULL
            EXCEPT SELECT * FROM pg_temp.plain_rfm(d, avg_mode)) x) AS differing,
       (SELECT count(*) FROM (
            SELECT * FROM pg_temp.plain_rfm(d, avg_mode)
            EXCEPT SELECT user_id, recency_days, frequency, revenue, r_score, f_score, m_score
            FROM rfm_segment(d, CASE WHEN avg_mode THEN 'average' ELSE 'total' END) WHERE r_score IS NOT NULL) x) AS missing
FROM (VALUES (DATE '1997-06-30'), (DATE '1998-06-30')) v(d), (VALUES (false), (true)) a(avg_mode)
ORDER BY 1, 2;

-- Equal values always get equal scores.
SELECT count(*) AS tie_groups_split FROM (
    SELECT frequency FROM rfm_segment('1998-06-30') WHERE f_score IS NOT NULL
    GROUP BY frequency HAVING count(DISTINCT f_score) > 1) t;

-- The refresh writes what rfm_segment returns, and records the breakpoints.
SELECT calculate_all_rfm('1998-06-30') AS users_written;
SELECT count(*) AS differing FROM (
    SELECT user_id, recency_days, frequency, revenue, monetary, r_score, f_score, m_score, rfm_cell, segment
    FROM ml_user_rfm EXCEPT SELECT * FROM rfm_segment('1998-06-30')) x;
SELECT as_of_date, monetary, users, customers_scored, users_without_orders, recency_breakpoints,
       frequency_breakpoints, monetary_breakpoints, segment_map
FROM ml_rfm_runs ORDER BY run_id DESC LIMIT 1;
-- The breakpoints reproduce every stored score: score = 1 + number of breakpoints reached.
SELECT count(*) AS scores_not_reproduced FROM ml_user_rfm r, ml_rfm_runs run
WHERE run.run_id = r.run_id AND r.r_score IS NOT NULL AND (
    r.r_score <> 1 + (SELECT count(*) FROM unnest(run.recency_breakpoints) b WHERE r.recency_days <= b) OR
    r.f_score <> 1 + (SELECT count(*) FROM unnest(run.frequency_breakpoints) b WHERE r.frequency >= b) OR
    r.m_score <> 1 + (SELECT count(*) FROM unnest(run.monetary_breakpoints) b WHERE r.monetary >= b));
SELECT * FROM rfm_segment_summary();
-- A refresh rewrites only the stored rows whose values or scores changed (ml_user_rfm derives
-- recency_days from the run's as-of date). The same date again writes nothing; a day later, with
-- no orders that day, recencies and breakpoints move together and no row changes; three months
-- earlier most rows change, and one DELETE clears the table for all of them. Each time the view
-- equals what rfm_segment returns.
SELECT calculate_all_rfm('1998-06-30') AS users;
SELECT run_id = (SELECT max(run_id) FROM ml_rfm_runs) AS view_on_latest_run, rows_written, rows_removed
FROM ml_rfm_runs WHERE run_id = (SELECT run_id FROM ml_rfm_as_of);
CREATE FUNCTION pg_temp.rfm_refresh_check(d date)
RETURNS TABLE (rows_written bigint, rows_removed bigint, differing bigint) LANGUAGE sql AS $$
    SELECT r.rows_written, r.rows_removed, (SELECT count(*) FROM (
        SELECT user_id, recency_days, frequency, revenue, monetary, r_score, f_score, m_score, rfm_cell, segment
        FROM ml_user_rfm EXCEPT SELECT * FROM rfm_segment(d)) x)
    FROM ml_rfm_runs r ORDER BY r.run_id DESC LIMIT 1
$$;
SELECT calculate_all_rfm('1998-07-01') AS users;
SELECT * FROM pg_temp.rfm_refresh_check('1998-07-01');
SELECT calculate_all_rfm('1998-03-31') AS users;
SELECT * FROM pg_temp.rfm_refresh_check('1998-03-31');
SELECT calculate_all_rfm('1998-06-30') AS users;
SELECT * FROM pg_temp.rfm_refresh_check('1998-06-30');

-- One user, scored against the latest run's breakpoints, agrees with the stored row.
SELECT * FROM calculate_user_rfm(3, '1998-06-30');
SELECT count(*) AS differing FROM (
    SELECT u.user_id FROM ml_user_rfm u, LATERAL calculate_user_rfm(u.user_id, '1998-06-30') c
    WHERE u.user_id % 97 = 0 AND (c.r_score, c.f_score, c.m_score, c.segment) IS DISTINCT FROM
                                 (u.r_score, u.f_score, u.m_score, u.segment)) x;
SELECT count(*) AS unknown_user_rows FROM calculate_user_rfm(999999999, '1998-06-30');

-- Migration between two dates, each scored on its own; totals add up to every user.
SELECT sum(users) AS users, count(*) AS transitions FROM rfm_segment_migration('1997-12-31', '1998-06-30');
SELECT * FROM rfm_segment_migration('1997-12-31', '1998-06-30') WHERE from_segment = 'Champions';
-- Sizes per date are users per date: each date sums to the users registered by then.
SELECT snapshot_date, sum(users) AS users, sum(share) AS share
FROM rfm_segment_sizes('1997-01-15', '1997-03-15', '1 month') GROUP BY 1 ORDER BY 1;
SELECT count(*) AS registered_by_1997_01_15 FROM public.users WHERE registered_at < '1997-01-16';

-- Hand-made scores for every segment: 20 customers, 4 per score in each of R, F and M, so each
-- customer's scores are set by construction, and one user without orders.
CREATE SCHEMA rfm_fx;
CREATE TABLE rfm_fx.cells (user_id int, r int, f int, m int, expected text);
INSERT INTO rfm_fx.cells VALUES
    (1, 5, 5, 5, 'Champions'), (2, 3, 3, 3, 'Loyal Customers'), (3, 4, 2, 1, 'Potential Loyalist'),
    (4, 5, 1, 2, 'New Customers'), (5, 4, 1, 4, 'Promising'), (6, 3, 2, 5, 'Need Attention'),
    (7, 2, 1, 3, 'About To Sleep'), (8, 2, 4, 2, 'At Risk'), (9, 1, 5, 4, 'Can''t Lose Them'),
    (10, 1, 3, 1, 'Hibernating'), (11, 1, 1, 5, 'Lost'),
    (12, 5, 5, 4, 'Champions'), (13, 5, 4, 3, 'Loyal Customers'), (14, 4, 4, 5, 'Champions'),
    (15, 4, 5, 1, 'Potential Loyalist'), (16, 3, 4, 2, 'Need Attention'), (17, 3, 3, 3, 'Loyal Customers'),
    (18, 2, 2, 1, 'At Risk'), (19, 2, 3, 4, 'At Risk'), (20, 1, 2, 2, 'Hibernating');
SELECT r, count(*) FROM rfm_fx.cells GROUP BY r ORDER BY r;
CREATE TABLE rfm_fx.users (user_id bigint, registered_at timestamptz);
CREATE TABLE rfm_fx.orders (order_id bigserial, user_id bigint, created_at timestamptz, status text,
                            total_amount numeric(12,2), currency text);
INSERT INTO rfm_fx.users SELECT user_id, timestamptz '2020-01-01' FROM rfm_fx.cells UNION ALL SELECT 21, '2020-01-01';
-- Within a score, the 4 customers get distinct values in user order: recency (5 - r) * 20 + j
-- days, frequency 4 * (f - 1) + j + 1 orders, revenue 1000 * m + 10 * j.
INSERT INTO rfm_fx.orders (user_id, created_at, status, total_amount, currency)
SELECT c.user_id, DATE '2021-01-01' - (c.rec + k - 1), 'paid',
       CASE WHEN k = 1 THEN c.rev - (c.freq - 1) ELSE 1 END, 'USD'
FROM (SELECT user_id, (5 - r) * 20 + (row_number() OVER (PARTITION BY r ORDER BY user_id) - 1)::int AS rec,
             4 * (f - 1) + row_number() OVER (PARTITION BY f ORDER BY user_id)::int AS freq,
             1000 * m + 10 * (row_number() OVER (PARTITION BY m ORDER BY user_id) - 1) AS rev
      FROM rfm_fx.cells) c, generate_series(1, c.freq) k;
SELECT setting, value FROM configure_source(users_table => 'rfm_fx.users', orders_table => 'rfm_fx.orders')
WHERE setting IN ('users_table', 'orders_table');
SELECT c.user_id, c.r, c.f, c.m, s.rfm_cell, s.segment, s.segment = c.expected AS as_documented
FROM rfm_fx.cells c JOIN rfm_segment('2021-01-01') s USING (user_id) ORDER BY c.user_id;
SELECT * FROM rfm_segment('2021-01-01') WHERE user_id = 21;

-- A custom map replaces the default; scores matching none of its rules are 'Others'.
INSERT INTO rfm_segment_map VALUES (1, 'Best', 4, 5, 4, 5, 1, 5), (2, 'Best', 5, 5, 1, 5, 5, 5),
                                   (3, 'Gone', 1, 1, 1, 5, 1, 5);
SELECT * FROM rfm_segment_rules();
SELECT calculate_all_rfm('2021-01-01');
SELECT segment, users FROM rfm_segment_summary();
SELECT segment_map FROM ml_rfm_runs ORDER BY run_id DESC LIMIT 1;
INSERT INTO rfm_segment_map VALUES (4, 'Bad', 3, 2, 1, 5, 1, 5);
INSERT INTO rfm_segment_map VALUES (4, 'No Orders', 3, 3, 1, 5, 1, 5);
DELETE FROM rfm_segment_map;

-- Bad input: NULL and negative amounts and NULL statuses are counted and left out; a NaN amount
-- is an error; orders after today are reported.
INSERT INTO rfm_fx.orders (user_id, created_at, status, total_amount) VALUES
    (1, '2020-12-30', 'paid', NULL), (1, '2020-12-30', 'paid', -5), (1, '2020-12-30', NULL, 5),
    (1, now() + interval '10 days', 'paid', 5), (999, '2020-12-30', 'paid', 5);
SELECT count(*) FROM rfm_segment('2021-01-01');
SELECT count(*) FROM rfm_segment();
ALTER TABLE rfm_fx.orders ALTER COLUMN total_amount TYPE numeric;
INSERT INTO rfm_fx.orders (user_id, created_at, status, total_amount) VALUES (2, '2020-12-30', 'paid', 'NaN');
SELECT count(*) FROM rfm_segment('2021-01-01');
DELETE FROM rfm_fx.orders WHERE total_amount = 'NaN';
SELECT * FROM rfm_segment('2021-01-01', 'median');
SELECT * FROM rfm_segment_sizes('2021-01-02', '2021-01-01');
SELECT * FROM rfm_segment_sizes('2021-01-01', '2021-01-02', '0 days');
-- Each date scores every customer again: more than 1000 dates is refused, however long the step.
SELECT * FROM rfm_segment_sizes('2021-01-01', '2023-09-28', '1 day');
SELECT * FROM rfm_segment_sizes('1970-01-01', '5874897-12-31', '1 month');
SELECT * FROM rfm_segment_migration(NULL, '2021-01-01');
SELECT rfm_segment_name(6, 1, 1);
-- Before any user exists: no customers, no error; the summary still needs a run.
TRUNCATE rfm_fx.orders;
SELECT count(*) AS users, count(r_score) AS scored FROM rfm_segment('2021-01-01');
DELETE FROM ml_rfm_runs;
SELECT * FROM rfm_segment_summary();
SELECT * FROM calculate_user_rfm(1);
SELECT count(*) AS settings FROM reset_configuration();
DROP SCHEMA rfm_fx CASCADE;
