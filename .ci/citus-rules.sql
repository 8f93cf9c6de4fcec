-- The rules that let the schema distribute by tenant on Citus, checked on plain PostgreSQL
-- against the catalog of a freshly migrated database (.ci/citus-rules.sh; deploy/SCALING.md).
-- :'declared' is migrations/citus/tables.txt as "kind name" lines.
--
-- A tenant table is every table of the public schema not declared reference or local there.
-- 1. a tenant table has a tenant_id column (it is the distribution column);
-- 2. every primary key, unique constraint and unique index of a tenant table includes tenant_id
--    (Citus can only enforce uniqueness within one shard);
-- 3. a foreign key between two tenant tables maps tenant_id to tenant_id (both rows on one
--    shard, and of one tenant);
-- 4. no reference or local table points at a tenant table (a copy on every node cannot check
--    rows that live on one), and no tenant table points at a local table;
-- 5. every declared table exists (the list does not go stale).
\set ON_ERROR_STOP 1
\pset footer off

CREATE TEMP TABLE declared AS
SELECT split_part(line, ' ', 1) AS kind, split_part(line, ' ', 2) AS name
FROM unnest(string_to_array(:'declared', E'\n')) AS line
WHERE line <> '';

CREATE TEMP VIEW tables AS
SELECT c.oid, c.relname AS name, coalesce(d.kind, 'tenant') AS kind,
       (SELECT a.attnum FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS tenant_att
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN declared d ON d.name = c.relname
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p');

CREATE TEMP TABLE violations AS
SELECT 1 AS rule, t.name AS relation, 'tenant table without a tenant_id column' AS problem
FROM tables t WHERE t.kind = 'tenant' AND t.tenant_att IS NULL
UNION ALL
SELECT 2, t.name, format('unique key %s without tenant_id: %s', i.indexrelid::regclass,
                         pg_get_indexdef(i.indexrelid))
FROM tables t JOIN pg_index i ON i.indrelid = t.oid
WHERE t.kind = 'tenant' AND i.indisunique AND t.tenant_att IS NOT NULL
  AND NOT (t.tenant_att = ANY (i.indkey::int2[]))
UNION ALL
SELECT 3, src.name, format('foreign key %s to %s does not map tenant_id to tenant_id: %s',
                           con.conname, dst.name, pg_get_constraintdef(con.oid))
FROM pg_constraint con
JOIN tables src ON src.oid = con.conrelid
JOIN tables dst ON dst.oid = con.confrelid
WHERE con.contype = 'f' AND src.kind = 'tenant' AND dst.kind = 'tenant'
  AND NOT EXISTS (
      SELECT 1 FROM unnest(con.conkey, con.confkey) AS k(child, parent)
      WHERE k.child = src.tenant_att AND k.parent = dst.tenant_att)
UNION ALL
SELECT 4, src.name, format('foreign key %s of a %s table points at %s table %s',
                           con.conname, src.kind, dst.kind, dst.name)
FROM pg_constraint con
JOIN tables src ON src.oid = con.conrelid
JOIN tables dst ON dst.oid = con.confrelid
WHERE con.contype = 'f'
  AND ((src.kind <> 'tenant' AND dst.kind = 'tenant') OR (src.kind = 'tenant' AND dst.kind = 'local')
       OR (src.kind = 'reference' AND dst.kind = 'local'))
UNION ALL
SELECT 5, d.name, format('declared %s in migrations/citus/tables.txt but no such table', d.kind)
FROM declared d WHERE NOT EXISTS (SELECT 1 FROM tables t WHERE t.name = d.name);

SELECT kind, count(*) AS tables FROM tables GROUP BY kind ORDER BY kind;

SELECT rule, relation, problem FROM violations ORDER BY rule, relation, problem;

DO $$
DECLARE n bigint := (SELECT count(*) FROM violations);
BEGIN
    IF n > 0 THEN
        RAISE EXCEPTION 'citus rules: % violation(s), listed above', n;
    END IF;
END $$;
