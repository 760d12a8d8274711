-- What a never-seen 10,000-unit batch's INSERT costs with fewer indexes on assignments.
-- Three copies of experiments_assignment (LIKE ... INCLUDING ALL, then some indexes dropped),
-- the batch's INSERT ... ON CONFLICT DO NOTHING of 10,000 new units into each, five rounds
-- interleaved, each rolled back. Ordinary tables (written to the WAL like the real one: temporary
-- tables are not, and would hide part of the cost), dropped at the end. Needs a migrated database with at least one assignment
-- (e.g. the one bench/assignment.py leaves):
-- psql -h 127.0.0.1 -U postgres -d bench_main -f bench/probes/assignment_indexes.sql
\timing on
SELECT experiment_id AS eid, variant_id AS vid FROM experiments_assignment LIMIT 1 \gset
CREATE TEMP TABLE new_units AS SELECT 'q' || g || '-' || (random() * 1e9)::bigint AS unit FROM generate_series(1, 10000) g;
DROP TABLE IF EXISTS probe_as_is;
CREATE TABLE probe_as_is (LIKE experiments_assignment INCLUDING ALL);
DROP TABLE IF EXISTS probe_without_variant;
CREATE TABLE probe_without_variant (LIKE experiments_assignment INCLUDING ALL);
DROP TABLE IF EXISTS probe_key_and_unique;
CREATE TABLE probe_key_and_unique (LIKE experiments_assignment INCLUDING ALL);
DO $$
DECLARE index_name text;
BEGIN
  -- without_variant: no index of variant_id alone; key_and_unique: only the primary key and (experiment, unit).
  FOR index_name IN SELECT indexname FROM pg_indexes WHERE tablename = 'probe_without_variant' AND indexdef LIKE '%(variant_id)' LOOP
    EXECUTE format('DROP INDEX %I', index_name);
  END LOOP;
  FOR index_name IN SELECT indexname FROM pg_indexes WHERE tablename = 'probe_key_and_unique' AND indexdef LIKE '%variant_id%' LOOP
    EXECUTE format('DROP INDEX %I', index_name);
  END LOOP;
END $$;
INSERT INTO probe_as_is SELECT * FROM experiments_assignment;
INSERT INTO probe_without_variant SELECT * FROM experiments_assignment;
INSERT INTO probe_key_and_unique SELECT * FROM experiments_assignment;
ALTER TABLE probe_as_is ALTER id RESTART WITH 1000000000;
ALTER TABLE probe_without_variant ALTER id RESTART WITH 1000000000;
ALTER TABLE probe_key_and_unique ALTER id RESTART WITH 1000000000;
SELECT tablename, count(*) AS indexes FROM pg_indexes WHERE tablename IN ('probe_as_is', 'probe_without_variant', 'probe_key_and_unique') GROUP BY 1;
\echo round 1: as_is
BEGIN;
INSERT INTO probe_as_is (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 1: without_variant
BEGIN;
INSERT INTO probe_without_variant (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 1: key_and_unique
BEGIN;
INSERT INTO probe_key_and_unique (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 2: as_is
BEGIN;
INSERT INTO probe_as_is (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 2: without_variant
BEGIN;
INSERT INTO probe_without_variant (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 2: key_and_unique
BEGIN;
INSERT INTO probe_key_and_unique (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 3: as_is
BEGIN;
INSERT INTO probe_as_is (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 3: without_variant
BEGIN;
INSERT INTO probe_without_variant (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 3: key_and_unique
BEGIN;
INSERT INTO probe_key_and_unique (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 4: as_is
BEGIN;
INSERT INTO probe_as_is (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 4: without_variant
BEGIN;
INSERT INTO probe_without_variant (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 4: key_and_unique
BEGIN;
INSERT INTO probe_key_and_unique (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 5: as_is
BEGIN;
INSERT INTO probe_as_is (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 5: without_variant
BEGIN;
INSERT INTO probe_without_variant (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round 5: key_and_unique
BEGIN;
INSERT INTO probe_key_and_unique (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, :vid, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
DROP TABLE probe_as_is, probe_without_variant, probe_key_and_unique;
