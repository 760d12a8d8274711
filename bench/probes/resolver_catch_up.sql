-- The CUPED resolver's UPDATE (experiments.db.covariate_arms.resolve_arms) with 10,000 assignments past
-- its watermark, in the former form (no metric named: every covariate of the experiment is read) and
-- the current one (the metric positions named: the covariates' primary key is probed per assignment).
-- Run on the database `bench/analysis.py --only-cuped` leaves (its largest experiment):
--   psql -h 127.0.0.1 -U postgres -d bench_cuped -f bench/probes/resolver_catch_up.sql
-- Each round first empties the arms of those assignments' covariates, then times one form, inside a
-- transaction that is rolled back: the database is left as it was. Two rounds of each, alternating.
\timing off
SELECT id AS experiment FROM experiments_experiment WHERE key LIKE 'bench-cuped-%' ORDER BY id DESC LIMIT 1 \gset
SELECT max(id) - 10000 AS watermark FROM experiments_assignment WHERE experiment_id = :experiment \gset
SELECT string_agg(DISTINCT metric_position::text, ', ') AS positions FROM experiments_covariate
    WHERE experiment_id = :experiment \gset
\echo experiment :experiment, watermark :watermark, metric positions :positions

\set empty 'UPDATE experiments_covariate AS c SET variant_id = NULL FROM experiments_assignment AS a WHERE a.experiment_id = :experiment AND a.id > :watermark AND c.experiment_id = :experiment AND c.metric_position IN (:positions) AND c.unit = a.unit'
\set former 'UPDATE experiments_covariate SET variant_id = a.variant_id FROM experiments_assignment AS a WHERE a.experiment_id = :experiment AND a.id > :watermark AND experiments_covariate.experiment_id = :experiment AND experiments_covariate.unit = a.unit AND experiments_covariate.variant_id IS NULL'
\set current 'UPDATE experiments_covariate SET variant_id = a.variant_id FROM experiments_assignment AS a WHERE a.experiment_id = :experiment AND a.id > :watermark AND experiments_covariate.experiment_id = :experiment AND experiments_covariate.metric_position IN (:positions) AND experiments_covariate.unit = a.unit AND experiments_covariate.variant_id IS NULL'

BEGIN; :empty; \echo former:
\timing on
:former;
\timing off
ROLLBACK;
BEGIN; :empty; \echo current:
\timing on
:current;
\timing off
ROLLBACK;
BEGIN; :empty; \echo former:
\timing on
:former;
\timing off
ROLLBACK;
BEGIN; :empty; \echo current:
\timing on
:current;
\timing off
ROLLBACK;
-- Nothing to resolve (the analysis's catch-up after a beat run): the watermark at the last assignment.
SELECT max(id) AS watermark FROM experiments_assignment WHERE experiment_id = :experiment \gset
\echo nothing to resolve, former:
\timing on
:former;
\timing off
\echo nothing to resolve, current:
\timing on
:current;
\timing off
