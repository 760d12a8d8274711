-- Assignments before and after migration 0017, on a 5M-row table: the batch's statements and the
-- queries that read assignments by variant, five rounds interleaved, each write rolled back.
--   before: primary key, unique (experiment, unit), (experiment, variant), (variant)
--   after:  primary key, unique (experiment, unit) INCLUDE (variant)
-- Two ordinary tables (written to the WAL like the real one), 2M rows of the probed experiment
-- (two variants, 30 days) and 3M of three others, vacuumed; dropped at the end. Needs a migrated
-- database with the benchmark's experiment (the one bench/assignment.py leaves), about 3 minutes:
-- psql -h 127.0.0.1 -U postgres -d bench_main -f bench/probes/assignment_covering_index.sql
SELECT id AS eid FROM experiments_experiment WHERE key = 'bench-ab' \gset
SELECT min(id) AS v1, max(id) AS v2 FROM experiments_variant WHERE experiment_id = :eid \gset
-- A variant with no assignment (a draft's): what deleting it checks.
SELECT max(id) + 1000 AS draft_variant FROM experiments_variant \gset
DROP TABLE IF EXISTS probe_before, probe_after;
CREATE TABLE probe_before (LIKE experiments_assignment INCLUDING DEFAULTS INCLUDING IDENTITY);
CREATE TABLE probe_after (LIKE experiments_assignment INCLUDING DEFAULTS INCLUDING IDENTITY);
INSERT INTO probe_before (id, experiment_id, unit, variant_id, assigned_at)
SELECT g, CASE WHEN g <= 2000000 THEN :eid ELSE 1000000 + g % 3 END, 'user-' || g,
       CASE WHEN g <= 2000000 THEN (CASE WHEN g % 2 = 0 THEN :v1 ELSE :v2 END) ELSE 2000000 + g % 6 END,
       now() - (g % 30) * interval '1 day'
FROM generate_series(1, 5000000) g;
INSERT INTO probe_after SELECT * FROM probe_before;
ALTER TABLE probe_before ADD PRIMARY KEY (id);
CREATE UNIQUE INDEX probe_before_unit ON probe_before (experiment_id, unit);
CREATE INDEX probe_before_by_variant ON probe_before (experiment_id, variant_id);
CREATE INDEX probe_before_variant ON probe_before (variant_id);
ALTER TABLE probe_after ADD PRIMARY KEY (id);
CREATE UNIQUE INDEX probe_after_unit ON probe_after (experiment_id, unit) INCLUDE (variant_id);
ALTER TABLE probe_before ALTER id RESTART WITH 10000000;
ALTER TABLE probe_after ALTER id RESTART WITH 10000000;
VACUUM ANALYZE probe_before;
VACUUM ANALYZE probe_after;
SELECT relname, pg_size_pretty(pg_relation_size(indexrelid)) AS size FROM pg_stat_user_indexes
WHERE relname IN ('probe_before', 'probe_after') ORDER BY 1, 2;
CREATE TEMP TABLE new_units AS
SELECT 'q' || g || '-' || (random() * 1e9)::bigint AS unit, CASE WHEN g % 2 = 0 THEN :v1 ELSE :v2 END AS variant_id
FROM generate_series(1, 10000) g ORDER BY 1;
CREATE TEMP TABLE stored_units AS SELECT 'user-' || (g * 199) AS unit FROM generate_series(1, 10000) g ORDER BY 1;
ANALYZE new_units;
ANALYZE stored_units;
\timing on
\set round 1
\ir assignment_covering_index_round.sql
\set round 2
\ir assignment_covering_index_round.sql
\set round 3
\ir assignment_covering_index_round.sql
\set round 4
\ir assignment_covering_index_round.sql
\set round 5
\ir assignment_covering_index_round.sql
\timing off
DROP TABLE probe_before, probe_after;
