-- One round of assignment_covering_index.sql (its tables and variables); each write rolled back.
\echo round :round: batch INSERT of 10,000 new units, ON CONFLICT DO NOTHING: before
BEGIN;
INSERT INTO probe_before (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, variant_id, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round :round: batch INSERT of 10,000 new units, ON CONFLICT DO NOTHING: after
BEGIN;
INSERT INTO probe_after (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, variant_id, now() FROM new_units ON CONFLICT (experiment_id, unit) DO NOTHING;
ROLLBACK;
\echo round :round: batch INSERT of 10,000 new units, plain (insert_new_assignments): after
BEGIN;
INSERT INTO probe_after (experiment_id, unit, variant_id, assigned_at) SELECT :eid, unit, variant_id, now() FROM new_units;
ROLLBACK;
\echo round :round: look-up of 10,000 never-seen units: before
SELECT count(*) FROM probe_before WHERE experiment_id = :eid AND unit IN (SELECT unit FROM new_units);
\echo round :round: look-up of 10,000 never-seen units: after
SELECT count(*) FROM probe_after WHERE experiment_id = :eid AND unit IN (SELECT unit FROM new_units);
\echo round :round: look-up of 10,000 stored units (unit, variant): before
SELECT count(variant_id) FROM probe_before WHERE experiment_id = :eid AND unit IN (SELECT unit FROM stored_units);
\echo round :round: look-up of 10,000 stored units (unit, variant): after
SELECT count(variant_id) FROM probe_after WHERE experiment_id = :eid AND unit IN (SELECT unit FROM stored_units);
\echo round :round: units per variant (progress, analysis): before
SELECT variant_id, count(*) FROM probe_before WHERE experiment_id = :eid GROUP BY variant_id;
\echo round :round: units per variant (progress, analysis): after
SELECT variant_id, count(*) FROM probe_after WHERE experiment_id = :eid GROUP BY variant_id;
\echo round :round: units per variant and day (reports): before
SELECT count(*) FROM (SELECT variant_id, date_trunc('day', assigned_at), count(id) FROM probe_before WHERE experiment_id = :eid GROUP BY 1, 2) q;
\echo round :round: units per variant and day (reports): after
SELECT count(*) FROM (SELECT variant_id, date_trunc('day', assigned_at), count(id) FROM probe_after WHERE experiment_id = :eid GROUP BY 1, 2) q;
\echo round :round: deleting a started variant, PROTECT (every row fetched): before
SELECT count(*) FROM (SELECT id FROM probe_before WHERE variant_id IN (:v1)) q;
\echo round :round: deleting a started variant, protect_within_experiment (LIMIT 1): after
SELECT id FROM probe_after WHERE variant_id IN (:v1) AND experiment_id IN (SELECT experiment_id FROM experiments_variant WHERE id IN (:v1)) LIMIT 1;
\echo round :round: deleting a draft variant, PROTECT: before
SELECT count(*) FROM (SELECT id FROM probe_before WHERE variant_id IN (:draft_variant)) q;
\echo round :round: deleting a draft variant, PROTECT without an index of the variant: after
SELECT count(*) FROM (SELECT id FROM probe_after WHERE variant_id IN (:draft_variant)) q;
\echo round :round: deleting a draft variant, protect_within_experiment (a draft has no rows): after
SELECT id FROM probe_after WHERE variant_id IN (:draft_variant) AND experiment_id IN (SELECT 999999) LIMIT 1;
