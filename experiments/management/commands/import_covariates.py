"""`manage.py import_covariates KEY FILE`: load covariates (CUPED) from CSV or JSON Lines.

CSV has a header `unit,value[,metric]` (an empty metric cell: the primary); JSON Lines has one
`{"unit", "value", "metric"?}` object per line. The same rules as the REST endpoint apply
(experiments.services.covariates), and the whole file is one transaction: if any row is
malformed or breaks a rule, the error names its line and field and nothing is stored. A
(unit, metric) stored before, or repeated in the file, is a duplicate: the first value stays.

On PostgreSQL a CSV file first goes the fast way: its bytes are COPYed into a staging table
and one statement converts, checks and stores them (`covariates_import_csv`). Anything that
way does not take as plainly valid rolls it back, and the file is read again row by row
(`covariates_import`: parsed in Python, COPYed into staging in chunks, one INSERT ... SELECT
... ON CONFLICT DO NOTHING), which imports it all the same or names every offending line.
"""

import itertools
import time
from pathlib import Path

from django.core.management.base import CommandError

from experiments.management.commands.import_observations import Command as ObservationsCommand
from experiments.management.commands.import_observations import _counting, _csv_items, _jsonl_items
from experiments.observation_input import ItemErrors
from experiments.services.covariates import covariates_import, covariates_import_csv, parse_covariate_items

CHUNK_ROWS = 10_000


def _chunks(items):
    """(rows, errors) per chunk of CHUNK_ROWS items, errors keyed `row[i].field` from the file's first row."""
    first_index = 0
    while chunk := list(itertools.islice(items, CHUNK_ROWS)):
        errors = ItemErrors(prefix="row")
        rows = parse_covariate_items(chunk, errors, first_index=first_index)
        first_index += len(chunk)
        yield rows, errors


class Command(ObservationsCommand):
    requires_system_checks: list = []
    help = "Import covariates (CUPED) for a draft or running experiment from a CSV (with a header) or JSON Lines file."
    file_help = "A .csv file (unit,value[,metric]) or a .jsonl / .ndjson file."

    def handle(self, *args, key: str, file: Path, format: str | None, no_progress: bool, **options):
        experiment, file_format = self._experiment_and_format(key, file, format)
        started = time.monotonic()
        try:
            result = self._import(experiment, file, file_format, no_progress)
        except UnicodeDecodeError as error:
            raise CommandError(f"The file is not UTF-8 ({error}); nothing was imported.") from None
        seconds = time.monotonic() - started
        self.stdout.write(
            f"Imported {result.accepted} covariate(s) into {key} from {file} "
            f"({result.duplicates} duplicate(s) skipped: a (unit, metric) seen before keeps its first value) "
            f"in {seconds:.1f} s.\naccepted: {result.accepted}, duplicates: {result.duplicates}"
        )

    @staticmethod
    def _import_csv(experiment, file: Path, on_bytes):
        return covariates_import_csv(experiment=experiment, path=file, on_bytes=on_bytes)

    def _import_row_by_row(self, experiment, file: Path, file_format: str, no_progress: bool):
        with file.open(encoding="utf-8", newline="") as handle, \
                self._progress(file, experiment.key, no_progress) as progress:
            lines = _counting(handle, progress)
            items = _csv_items(lines) if file_format == "csv" else _jsonl_items(lines)
            return covariates_import(experiment=experiment, chunks=_chunks(items))
