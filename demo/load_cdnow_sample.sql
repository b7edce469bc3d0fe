-- Loads the CDNOW sample of the customer-base literature (demo/cdnow/CDNOW_sample.txt: 2,357
-- customers, 6,919 purchase lines) as users and orders in the schema named by the psql variable
-- cdnow_schema: user ids are the sample's own customer ids (1..2357, the ids of the published
-- summaries), signup is the first purchase, and every purchase line is one 'completed' order
-- dated at midnight UTC. Set the psql variable sample_file to the file's path.
CREATE TABLE :"cdnow_schema".users (user_id bigint PRIMARY KEY, registered_at timestamptz NOT NULL);
CREATE TABLE :"cdnow_schema".orders (order_id bigserial PRIMARY KEY, user_id bigint, created_at timestamptz,
                                     status text, total_amount numeric(12,2), currency text DEFAULT 'USD');
CREATE TEMP TABLE cdnow_sample_raw (line text);
\set load_cmd '\\copy cdnow_sample_raw FROM ' :'sample_file'
:load_cmd
INSERT INTO :"cdnow_schema".orders (user_id, created_at, status, total_amount)
    SELECT f[2]::bigint, to_date(f[3], 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC', 'completed', f[5]::numeric
    FROM (SELECT regexp_split_to_array(btrim(line), '\s+') AS f FROM cdnow_sample_raw WHERE btrim(line) <> '') s;
INSERT INTO :"cdnow_schema".users SELECT user_id, min(created_at) FROM :"cdnow_schema".orders GROUP BY user_id;
ANALYZE :"cdnow_schema".users;
ANALYZE :"cdnow_schema".orders;
DROP TABLE cdnow_sample_raw;
