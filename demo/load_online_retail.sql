-- Loads UCI Online Retail (demo/online_retail/online_retail.csv.gz, CC BY 4.0, see its README)
-- into the default source schema extended with products and order items, in the schema named by
-- the psql variable retail_schema (default public). Set retail_file to the path of the .csv.gz.
--
-- The mapping is the one in the data's README, tested there:
--   products     one per stock code, upper-cased (3,958): the commonest description as the
--                title, is_non_product for the fee codes (postage, manual, discount, bank
--                charges, Amazon fee, samples, gift vouchers ...), and a category;
--   users        one per customer id (4,372), registered at their first invoice;
--   orders       one per invoice of a known customer (22,190): 'completed', 'cancelled' (C...)
--                or 'adjustment' (A...), total_amount = |Σ quantity × unit price|;
--   order_items  one per invoice line of a known customer (406,829), as the data has it:
--                cancellations keep their negative quantities, zero prices stay zero, fee
--                codes stay (the extension counts and leaves out what cannot be a sale).
-- Invoice dates are UK local time; they are read as Europe/London.
--
-- The data has no product categories. category is the last word of the title that is not a
-- colour, a size, a material or a pattern, made singular (HOLDER, BAG, MUG, CANDLE, NECKLACE ...),
-- where at least 10 products share it, else OTHER: a grouping by product type taken from the
-- names, good enough to pool price elasticities, and derived, not recorded by the shop.
\if :{?retail_schema}
\else
\set retail_schema public
\endif
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS :"retail_schema";
RESET client_min_messages;

CREATE TEMP TABLE online_retail_raw (
    invoice_no text NOT NULL, stock_code text NOT NULL, description text,
    quantity integer NOT NULL, invoice_date timestamp NOT NULL,
    unit_price numeric(12,3) NOT NULL, customer_id bigint, country text NOT NULL);
-- \copy does not expand variables, so the command is built in one.
\set load_cmd '\\copy online_retail_raw FROM PROGRAM ''gzip -dc "' :retail_file '"'' WITH (FORMAT csv, HEADER true)'
:load_cmd

CREATE TABLE :"retail_schema".products (
    product_id     bigint PRIMARY KEY,
    stock_code     text NOT NULL UNIQUE,
    title          text,
    category       text NOT NULL,
    is_non_product boolean NOT NULL
);
INSERT INTO :"retail_schema".products (product_id, stock_code, title, category, is_non_product)
WITH codes AS (
    SELECT DISTINCT upper(stock_code) AS sc FROM online_retail_raw
), titles AS (
    SELECT DISTINCT ON (upper(stock_code)) upper(stock_code) AS sc, btrim(description) AS title
    FROM online_retail_raw WHERE description IS NOT NULL AND btrim(description) <> ''
    GROUP BY upper(stock_code), btrim(description)
    ORDER BY upper(stock_code), count(*) DESC, btrim(description)
), words AS (
    -- The title's words, last first, without colours, sizes and other qualifiers, singular.
    SELECT t.sc, w.ord, regexp_replace(w.word, '([^S])S$', '\1') AS word
    FROM titles t, regexp_split_to_table(upper(t.title), '[^A-Z]+') WITH ORDINALITY w(word, ord)
    WHERE length(w.word) >= 3
      AND w.word NOT IN ('PINK', 'RED', 'BLUE', 'GREEN', 'WHITE', 'BLACK', 'IVORY', 'CREAM', 'GOLD',
                         'SILVER', 'PURPLE', 'ORANGE', 'YELLOW', 'BROWN', 'GREY', 'LILAC', 'TURQUOISE',
                         'SMALL', 'LARGE', 'MEDIUM', 'MINI', 'JUMBO', 'BIG', 'GIANT', 'DESIGN', 'SET',
                         'ASSORTED', 'VINTAGE', 'RETRO', 'COLOUR', 'COLOURS', 'COLOURED', 'THE', 'AND',
                         'WITH', 'OF', 'FOR', 'DOTS', 'SPOTS', 'STRIPE', 'STRIPES', 'FLORAL', 'PAISLEY',
                         'HEART', 'HEARTS', 'STAR', 'STARS', 'FLOWER', 'FLOWERS', 'GLASS', 'METAL',
                         'WOODEN', 'WOOD', 'CERAMIC', 'ENAMEL', 'PAPER', 'FELT', 'CHRISTMAS', 'EASTER',
                         'DOLLY', 'GIRL', 'SPACEBOY', 'REGENCY', 'PANTRY', 'POLKADOT', 'BIRD', 'ROSE',
                         'ROSES', 'DIAMANTE', 'SKULL', 'SKULLS', 'CHARLOTTE', 'RETROSPOT', 'HANGING',
                         'DECORATIVE', 'FRENCH', 'ANTIQUE', 'ENGLISH', 'SCANDINAVIAN')
), named AS (
    SELECT c.sc, t.title,
           (SELECT w.word FROM words w WHERE w.sc = c.sc ORDER BY w.ord DESC LIMIT 1) AS last_word
    FROM codes c LEFT JOIN titles t USING (sc)
), common AS (
    SELECT last_word FROM named WHERE last_word IS NOT NULL GROUP BY last_word HAVING count(*) >= 10
)
SELECT row_number() OVER (ORDER BY n.sc), n.sc, n.title,
       CASE WHEN n.last_word IN (SELECT last_word FROM common) THEN n.last_word ELSE 'OTHER' END,
       n.sc IN ('POST', 'DOT', 'M', 'C2', 'D', 'S', 'BANK CHARGES', 'AMAZONFEE', 'CRUK', 'PADS', 'B')
           OR n.sc LIKE 'GIFT\_%'
FROM named n;

CREATE TABLE :"retail_schema".users (
    user_id       bigint PRIMARY KEY,
    registered_at timestamptz NOT NULL,
    country       text
);
INSERT INTO :"retail_schema".users (user_id, registered_at, country)
SELECT customer_id, min(invoice_date) AT TIME ZONE 'Europe/London', mode() WITHIN GROUP (ORDER BY country)
FROM online_retail_raw WHERE customer_id IS NOT NULL GROUP BY customer_id;

-- Invoice numbers of purchases, cancellations and adjustments never collide, so the digits are
-- the key.
CREATE TABLE :"retail_schema".orders (
    order_id     bigint PRIMARY KEY,
    user_id      bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    status       text NOT NULL,
    total_amount numeric(12,2) NOT NULL,
    currency     text NOT NULL DEFAULT 'GBP'
);
INSERT INTO :"retail_schema".orders (order_id, user_id, created_at, status, total_amount)
SELECT ltrim(invoice_no, 'CA')::bigint, customer_id, min(invoice_date) AT TIME ZONE 'Europe/London',
       CASE WHEN invoice_no LIKE 'C%' THEN 'cancelled' WHEN invoice_no LIKE 'A%' THEN 'adjustment'
            ELSE 'completed' END,
       round(abs(sum(quantity * unit_price)), 2)
FROM online_retail_raw WHERE customer_id IS NOT NULL
GROUP BY invoice_no, customer_id;
CREATE INDEX ON :"retail_schema".orders (user_id, created_at);

CREATE TABLE :"retail_schema".order_items (
    order_id   bigint NOT NULL,
    product_id bigint NOT NULL,
    quantity   integer NOT NULL,
    unit_price numeric(12,3) NOT NULL
);
INSERT INTO :"retail_schema".order_items (order_id, product_id, quantity, unit_price)
SELECT ltrim(r.invoice_no, 'CA')::bigint, p.product_id, r.quantity, r.unit_price
FROM online_retail_raw r JOIN :"retail_schema".products p ON p.stock_code = upper(r.stock_code)
WHERE r.customer_id IS NOT NULL;
CREATE INDEX ON :"retail_schema".order_items (order_id);

ANALYZE :"retail_schema".products;
ANALYZE :"retail_schema".users;
ANALYZE :"retail_schema".orders;
ANALYZE :"retail_schema".order_items;
DROP TABLE online_retail_raw;
