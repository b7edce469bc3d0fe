-- A seed-shaped shop at a given scale, generated inside PostgreSQL: :users users and :orders
-- orders in the default schema. Shaped like the original platform's seed data, at scale:
--   * signups spread over two years (2023-01-01 .. 2024-12-31), orders up to 2025-06-30;
--   * 30% of users never order; order counts per buyer are skewed (a power law: a few users
--     have thousands of orders, the median buyer a handful);
--   * amounts log-normal (median about 55, long right tail), 2 decimal places;
--   * statuses paid 40%, completed 35%, shipped 12%, cancelled 9%, refunded 2%, pending 2%;
--   * 1% of orders dated up to 30 days before their user's signup (imported history);
--   * rows in random physical order: order ids are assigned before users and dates are drawn,
--     so neither the user nor the date follows the heap order.
-- Deterministic for a given scale: setseed() fixes every random() below.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP TABLE IF EXISTS public.orders, public.users;
SELECT setseed(0.42);

CREATE TABLE public.users (
    user_id       bigint PRIMARY KEY,
    registered_at timestamptz NOT NULL,
    email         text
);
INSERT INTO public.users
SELECT i, timestamptz '2023-01-01 00:00:00+00' + random() * interval '730 days', 'user' || i || '@example.com'
FROM generate_series(1, :users) AS i;

CREATE TABLE public.orders (
    order_id     bigint PRIMARY KEY,
    user_id      bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    status       text NOT NULL,
    total_amount numeric(12,2) NOT NULL,
    currency     text NOT NULL DEFAULT 'USD'
);
-- The k-th most active buyer is floor(0.7 * users * random()^2); a multiplication by an odd
-- constant not divisible by 5 modulo the user count scatters buyers over the user ids.
INSERT INTO public.orders (order_id, user_id, created_at, status, total_amount)
SELECT g.i,
       u.user_id,
       CASE WHEN r.before_signup < 0.01
            THEN u.registered_at - r.offset_frac * interval '30 days'
            ELSE u.registered_at + r.offset_frac * (timestamptz '2025-06-30 23:59:59+00' - u.registered_at)
       END,
       CASE WHEN r.s < 0.40 THEN 'paid' WHEN r.s < 0.75 THEN 'completed' WHEN r.s < 0.87 THEN 'shipped'
            WHEN r.s < 0.96 THEN 'cancelled' WHEN r.s < 0.98 THEN 'refunded' ELSE 'pending' END,
       least(round(exp(4.0 + 0.9 * sqrt(-2 * ln(1 - r.a1)) * cos(2 * pi() * r.a2))::numeric, 2), 99999.99)
FROM generate_series(1, :orders) AS g(i)
CROSS JOIN LATERAL (
    SELECT (floor(0.7 * :users * power(random(), 2))::bigint * 2654435761 % :users) + 1 AS uid,
           random() AS before_signup, random() AS offset_frac, random() AS s,
           random() AS a1, random() AS a2, g.i AS keep_lateral
) AS r
JOIN public.users u ON u.user_id = r.uid;

-- What a shop has: an index for looking up one user's orders.
CREATE INDEX orders_user_id_idx ON public.orders (user_id);
VACUUM (ANALYZE) public.users, public.orders;
CHECKPOINT;
