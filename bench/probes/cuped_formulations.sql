-- CUPED's covariate sums at 10M observations, written several ways (bench/README.md, "CUPED").
-- Needs the database bench/analysis.py leaves after its CUPED scenario at 10M:
--   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_cuped .venv/bin/python bench/analysis.py --only-cuped --cuped-sizes 10000000
--   psql -h 127.0.0.1 -U postgres -d bench_cuped -f bench/probes/cuped_formulations.sql
-- The three metrics: 0 conversion (binary, sum), 1 revenue (continuous, sum), 2 latency_ms (continuous, mean).
-- Each statement once, under the analysis's settings (jit off, work_mem 256MB); (a) runs first and warms the cache.
\timing on
SET jit = off;
SET work_mem = '256MB';
SELECT id AS eid FROM experiments_experiment WHERE key = 'bench-cuped-10000000' \gset

\echo '(a) the first version: one query per metric, from the assignments (the mean metric from its outcomes)'
\echo 'position 0'
SELECT variant_id, count(*), sum(y), sum(y * y), sum(x), sum(x * x), sum(x * y) FROM (
  SELECT a.variant_id, CASE WHEN o.total > 0 THEN 1.0 ELSE 0.0 END AS y, COALESCE(c.value, 0.0) AS x
  FROM experiments_assignment a
  LEFT JOIN experiments_unitoutcome o ON o.experiment_id = a.experiment_id AND o.metric_position = 0
       AND o.unit = a.unit AND o.variant_id = a.variant_id
  LEFT JOIN experiments_covariate c ON c.experiment_id = a.experiment_id AND c.metric_position = 0 AND c.unit = a.unit
  WHERE a.experiment_id = :eid) AS per_unit GROUP BY variant_id \g /dev/null
\echo 'position 1'
SELECT variant_id, count(*), sum(y), sum(y * y), sum(x), sum(x * x), sum(x * y) FROM (
  SELECT a.variant_id, COALESCE(o.total, 0.0) AS y, COALESCE(c.value, 0.0) AS x
  FROM experiments_assignment a
  LEFT JOIN experiments_unitoutcome o ON o.experiment_id = a.experiment_id AND o.metric_position = 1
       AND o.unit = a.unit AND o.variant_id = a.variant_id
  LEFT JOIN experiments_covariate c ON c.experiment_id = a.experiment_id AND c.metric_position = 1 AND c.unit = a.unit
  WHERE a.experiment_id = :eid) AS per_unit GROUP BY variant_id \g /dev/null
\echo 'position 2'
SELECT variant_id, count(*), sum(y), sum(y * y), sum(x), sum(x * x), sum(x * y) FROM (
  SELECT o.variant_id, o.total / o.count AS y, COALESCE(c.value, 0.0) AS x
  FROM experiments_unitoutcome o
  LEFT JOIN experiments_covariate c ON c.experiment_id = o.experiment_id AND c.metric_position = o.metric_position
       AND c.unit = o.unit
  WHERE o.experiment_id = :eid AND o.metric_position = 2) AS per_unit GROUP BY variant_id \g /dev/null

\echo '(b) the kept version (experiments/db/cuped_statistics.py): one query for every metric, from the covariates'
SELECT c.metric_position, a.variant_id, sum(c.value), sum(c.value * c.value),
       sum(CASE WHEN o.unit IS NOT NULL THEN c.value END), sum(CASE WHEN o.unit IS NOT NULL THEN c.value * c.value END),
       sum(c.value * (CASE o.metric_position WHEN 0 THEN CASE WHEN o.total > 0 THEN 1.0 ELSE 0.0 END
                                              WHEN 1 THEN o.total WHEN 2 THEN o.total / o.count END))
FROM experiments_covariate c
JOIN experiments_assignment a ON a.experiment_id = c.experiment_id AND a.unit = c.unit
LEFT JOIN experiments_unitoutcome o ON o.experiment_id = c.experiment_id AND o.metric_position = c.metric_position
     AND o.unit = c.unit AND o.variant_id = a.variant_id
WHERE c.experiment_id = :eid AND c.metric_position IN (0, 1, 2)
GROUP BY c.metric_position, a.variant_id \g /dev/null

\echo '(c) two queries: each covariate joined to its arm (also the bench information BARE_COVARIATE_JOIN), then to its outcome'
SELECT c.metric_position, a.variant_id, count(*), sum(c.value), sum(c.value * c.value)
FROM experiments_covariate c JOIN experiments_assignment a ON a.experiment_id = c.experiment_id AND a.unit = c.unit
WHERE c.experiment_id = :eid GROUP BY 1, 2 \g /dev/null
SELECT c.metric_position, o.variant_id, count(*), sum(c.value), sum(c.value * c.value), sum(c.value * o.total)
FROM experiments_covariate c JOIN experiments_unitoutcome o ON o.experiment_id = c.experiment_id
     AND o.metric_position = c.metric_position AND o.unit = c.unit
WHERE c.experiment_id = :eid GROUP BY 1, 2 \g /dev/null

\echo '(d) one metric with merge joins over the primary-key orders (hash joins off)'
SET enable_hashjoin = off;
SET max_parallel_workers_per_gather = 0;
SELECT c.metric_position, a.variant_id, sum(c.value), sum(c.value * c.value),
       sum(CASE WHEN o.unit IS NOT NULL THEN c.value END), sum(c.value * o.total)
FROM experiments_covariate c
JOIN experiments_assignment a ON a.experiment_id = c.experiment_id AND a.unit = c.unit
LEFT JOIN experiments_unitoutcome o ON o.experiment_id = c.experiment_id AND o.metric_position = c.metric_position
     AND o.unit = c.unit AND o.variant_id = a.variant_id
WHERE c.experiment_id = :eid AND c.metric_position = 1
GROUP BY 1, 2 \g /dev/null
