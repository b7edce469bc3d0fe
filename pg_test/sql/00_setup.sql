-- A fresh database: create the extension and show what it installs, with the truth about each
-- function (volatility, strictness, parallel safety) as the catalog records it.
CREATE EXTENSION cda_analytics;
SELECT p.proname,
       CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END AS volatility,
       p.proisstrict AS strict,
       CASE p.proparallel WHEN 's' THEN 'safe' WHEN 'r' THEN 'restricted' ELSE 'unsafe' END AS parallel,
       array_to_string(p.proconfig, ',') AS config
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'cda_analytics'
ORDER BY p.proname;
-- Nothing computed yet: the summary says so instead of returning nothing.
\set SHOW_CONTEXT never
SELECT * FROM get_ltv_summary();
\echo :LAST_ERROR_SQLSTATE
-- Defaults are in effect until configured.
SELECT * FROM cda_configuration();
-- Internal functions refuse to be called on their own.
SELECT * FROM _ltv_pending_rows(1);
SELECT * FROM _clv_pending_rows(1);
SELECT * FROM _anomaly_pending_rows(1);
SELECT * FROM _rfm_pending_rows(1);
SELECT _ltv_orders(NULL::bytea, 1, now(), 1.0, false, 2);
-- A users argument naming shared totals that do not exist (or are not a run's) is refused.
SELECT _ltv_orders(decode('43444153' || 'efbeadde' || repeat('00', 16) || '43444155' || repeat('00', 168), 'hex'),
                   1, now(), 1.0, false, 2);
