-- Does the order of the observations' unique index matter when a batch interleaves metrics?
-- 1,000,000 rows with increasing ids and the metric cycling over three values, inserted into a
-- table indexed (experiment, metric, id) and one indexed (experiment, id, metric), twice each.
-- Any database: psql -h 127.0.0.1 -U postgres -d postgres -f bench/probes/observation_index_order.sql
\timing on
CREATE TEMP TABLE by_metric_first (e bigint, m smallint, k varchar(255), u varchar(255), v float8);
CREATE TEMP TABLE by_id_first (e bigint, m smallint, k varchar(255), u varchar(255), v float8);
CREATE UNIQUE INDEX ON by_metric_first (e, m, k);
CREATE UNIQUE INDEX ON by_id_first (e, k, m);
\echo (experiment, metric, id)
INSERT INTO by_metric_first SELECT 7, (g / 2) % 3, 'o-' || lpad(g::text, 7, '0'), 'r-' || lpad((g / 2)::text, 7, '0'), g FROM generate_series(0, 999999) g;
\echo (experiment, id, metric)
INSERT INTO by_id_first SELECT 7, (g / 2) % 3, 'o-' || lpad(g::text, 7, '0'), 'r-' || lpad((g / 2)::text, 7, '0'), g FROM generate_series(0, 999999) g;
TRUNCATE by_metric_first, by_id_first;
\echo (experiment, metric, id), again
INSERT INTO by_metric_first SELECT 7, (g / 2) % 3, 'o-' || lpad(g::text, 7, '0'), 'r-' || lpad((g / 2)::text, 7, '0'), g FROM generate_series(0, 999999) g;
\echo (experiment, id, metric), again
INSERT INTO by_id_first SELECT 7, (g / 2) % 3, 'o-' || lpad(g::text, 7, '0'), 'r-' || lpad((g / 2)::text, 7, '0'), g FROM generate_series(0, 999999) g;
