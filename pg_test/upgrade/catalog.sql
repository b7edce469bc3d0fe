-- The extension's catalog as text, one fact per line, sorted: what a fresh install and an upgraded
-- one must agree on. Every member object (pg_depend 'e') is listed by pg_describe_object, so an
-- object of a kind not detailed below still shows up, and then in detail: functions (signature,
-- result, kind, volatility, strictness, parallel safety, cost, settings, body or symbol, ACL),
-- aggregates (their support functions), tables, views and types (columns in order, defaults,
-- constraints, indexes, triggers, policies, view definitions, ACLs), the dump registrations, and
-- every comment. Names are shown as in the extension's schema, without it.
\pset format unaligned
\pset tuples_only on
\pset pager off
WITH ext AS (SELECT oid, extnamespace, extconfig, extcondition FROM pg_extension WHERE extname = 'cda_analytics'),
member AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
rel AS (
    SELECT c.oid, c.relname, c.relkind, c.relacl, c.relrowsecurity, c.reloptions
    FROM pg_class c JOIN member m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
),
fn AS (
    SELECT p.* FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
),
facts(line) AS (
    SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM member
    UNION ALL
    SELECT format('function %s(%s) returns %s kind %s %s strict=%s parallel=%s secdef=%s leakproof=%s cost=%s rows=%s config=%s lang=%s acl=%s',
                  p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.prokind,
                  p.provolatile, p.proisstrict, p.proparallel, p.prosecdef, p.proleakproof, p.procost, p.prorows,
                  p.proconfig, l.lanname, p.proacl)
    FROM fn p JOIN pg_language l ON l.oid = p.prolang
    UNION ALL
    -- The body of SQL and PL/pgSQL functions, or the C symbol and library.
    SELECT format('function body %s(%s) %s', p.proname, pg_get_function_identity_arguments(p.oid),
                  md5(coalesce(p.probin, '') || '|' || p.prosrc))
    FROM fn p
    UNION ALL
    SELECT format('aggregate %s(%s) sfunc=%s stype=%s final=%s combine=%s serial=%s deserial=%s init=%s parallel=%s',
                  p.proname, pg_get_function_identity_arguments(p.oid), a.aggtransfn, format_type(a.aggtranstype, NULL),
                  a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn, a.agginitval, p.proparallel)
    FROM fn p JOIN pg_aggregate a ON a.aggfnoid = p.oid
    UNION ALL
    SELECT format('relation %s kind=%s rls=%s options=%s acl=%s', relname, relkind, relrowsecurity, reloptions, relacl)
    FROM rel
    UNION ALL
    -- Columns by position among the live ones: a dropped column leaves a gap, not a difference.
    SELECT format('column %s #%s %s %s notnull=%s default=%s identity=%s generated=%s collation=%s acl=%s',
                  r.relname, row_number() OVER (PARTITION BY r.oid ORDER BY a.attnum), a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
                  a.attidentity, a.attgenerated, a.attcollation::regcollation, a.attacl)
    FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    UNION ALL
    SELECT format('constraint %s %s %s', r.relname, co.conname, pg_get_constraintdef(co.oid))
    FROM rel r JOIN pg_constraint co ON co.conrelid = r.oid
    UNION ALL
    SELECT format('index %s', pg_get_indexdef(i.indexrelid))
    FROM rel r JOIN pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT format('trigger %s', pg_get_triggerdef(t.oid))
    FROM rel r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s %s %s %s using=%s check=%s', r.relname, po.polname, po.polcmd, po.polroles::regrole[],
                  pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid))
    FROM rel r JOIN pg_policy po ON po.polrelid = r.oid
    UNION ALL
    SELECT format('view %s %s', relname, pg_get_viewdef(oid)) FROM rel WHERE relkind IN ('v', 'm')
    UNION ALL
    SELECT format('sequence %s %s start=%s inc=%s min=%s max=%s cycle=%s', r.relname, format_type(s.seqtypid, NULL),
                  s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle)
    FROM rel r JOIN pg_sequence s ON s.seqrelid = r.oid
    UNION ALL
    SELECT format('enum %s %s', t.typname, e.enumlabel)
    FROM pg_type t JOIN member m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    JOIN pg_enum e ON e.enumtypid = t.oid
    UNION ALL
    SELECT format('dumped %s where %s', x.reloid::regclass, coalesce(x.cond, ''))
    FROM ext, unnest(ext.extconfig, ext.extcondition) AS x(reloid, cond)
    UNION ALL
    -- Comments on every member and on the columns of member relations.
    SELECT format('comment %s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
    FROM pg_description d
    WHERE EXISTS (SELECT 1 FROM member m WHERE m.classid = d.classoid AND m.objid = d.objoid)
)
SELECT line FROM facts ORDER BY line COLLATE "C";
