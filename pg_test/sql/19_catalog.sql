-- The catalog describes itself: every table, view, column and function of the extension has a
-- COMMENT, so psql's \d+ and \df+, DBeaver, Metabase and Grafana show what each holds. A new
-- object without one is listed here, and the story fails.
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'cda_analytics'),
     members AS (SELECT d.classid, d.objid FROM pg_depend d, ext WHERE d.refobjid = ext.oid AND d.deptype = 'e')
SELECT 'relation' AS kind, c.oid::regclass::text AS name
FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
WHERE c.relkind IN ('r', 'v') AND obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT 'column', c.oid::regclass::text || '.' || a.attname
FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'v') AND col_description(c.oid, a.attnum) IS NULL
UNION ALL
SELECT 'function', p.oid::regprocedure::text
FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
WHERE obj_description(p.oid, 'pg_proc') IS NULL
ORDER BY 1, 2;

-- What is described, by kind; no comment is empty or a placeholder.
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'cda_analytics'),
     members AS (SELECT d.classid, d.objid FROM pg_depend d, ext WHERE d.refobjid = ext.oid AND d.deptype = 'e'),
     described AS (
         SELECT CASE c.relkind WHEN 'r' THEN 'table' ELSE 'view' END AS kind, obj_description(c.oid, 'pg_class') AS comment
         FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid WHERE c.relkind IN ('r', 'v')
         UNION ALL
         SELECT 'column', col_description(c.oid, a.attnum)
         FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped WHERE c.relkind IN ('r', 'v')
         UNION ALL
         SELECT CASE WHEN p.proname LIKE '\_%' THEN 'internal function' ELSE 'function' END, obj_description(p.oid, 'pg_proc')
         FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid)
SELECT kind, count(*) AS objects, count(*) FILTER (WHERE length(comment) >= 20) AS described
FROM described GROUP BY 1 ORDER BY 1;

-- What a BI tool shows for a table and a column.
SELECT obj_description('ml_user_ltv'::regclass, 'pg_class') AS ml_user_ltv;
SELECT col_description('ml_user_ltv'::regclass, 3) AS revenue_3m;
SELECT obj_description('recommend(bigint,integer,text,boolean)'::regprocedure, 'pg_proc') AS recommend;

-- The version, of the library loaded and of the catalog installed: the same after CREATE
-- EXTENSION (an upgraded library reads ahead of its catalog until ALTER EXTENSION ... UPDATE).
SELECT library = catalog AS same, catalog = (SELECT extversion FROM pg_extension WHERE extname = 'cda_analytics') AS as_installed
FROM cda_analytics_version();
