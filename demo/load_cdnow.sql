-- Loads the CDNOW purchases (demo/cdnow/CDNOW_master.txt) into the default source schema:
-- one user per customer, registered on the day of their first purchase, and one 'completed'
-- order per purchase line, dated at midnight UTC. Set the psql variable cdnow_file to the path.
CREATE TABLE public.users (
    user_id       bigint PRIMARY KEY,
    registered_at timestamptz NOT NULL,
    email         text
);
CREATE TABLE public.orders (
    order_id     bigint PRIMARY KEY,
    user_id      bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    status       text NOT NULL,
    total_amount numeric(12,2) NOT NULL,
    currency     text NOT NULL DEFAULT 'USD'
);
CREATE INDEX orders_user_id_created_at_idx ON public.orders (user_id, created_at);

CREATE TEMP TABLE cdnow_raw (line text);
-- \copy does not expand variables, so the command is built in one.
\set load_cmd '\\copy cdnow_raw FROM ' :'cdnow_file'
:load_cmd
CREATE TEMP TABLE cdnow AS
    SELECT row_number() OVER () AS order_id, f[1]::bigint AS customer_id,
           to_date(f[2], 'YYYYMMDD') AS day, f[3]::int AS cds, f[4]::numeric(12,2) AS dollars
    FROM (SELECT regexp_split_to_array(btrim(line), '\s+') AS f FROM cdnow_raw
          WHERE btrim(line) <> '' AND btrim(line) NOT LIKE 'customer_id%') s;

INSERT INTO public.users (user_id, registered_at)
    SELECT customer_id, min(day)::timestamp AT TIME ZONE 'UTC' FROM cdnow GROUP BY customer_id;
INSERT INTO public.orders (order_id, user_id, created_at, status, total_amount)
    SELECT order_id, customer_id, day::timestamp AT TIME ZONE 'UTC', 'completed', dollars FROM cdnow;
ANALYZE public.users;
ANALYZE public.orders;
DROP TABLE cdnow_raw;
DROP TABLE cdnow;
