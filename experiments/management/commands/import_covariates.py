"""`manage.py import_covariates KEY FILE`: load covariates (CUPED) from CSV or JSON Lines.

CSV has a header `unit,value[,metric]` (an empty metric cell: the primary); JSON Lines has one
`{"unit", "value", "metric"?}` object per line. The same rules as the REST endpoint apply
(experiments.services.covariates), and the whole file is one transaction: if any row is
malformed or breaks a rule, the error names its line and field and nothing is stored. On
PostgreSQL the rows are COPYed into a staging table and stored by one INSERT ... SELECT ...
ON CONFLICT DO NOTHING (experiments.db.covariates). A (unit, metric) stored before, or
repeated in the file, is a duplicate: the first value stays.
"""

import itertools
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from experiments.errors import ExperimentError
from experiments.management.commands.import_observations import Command as ObservationsCommand
from experiments.management.commands.import_observations import _counting, _csv_items, _jsonl_items
from experiments.models import Experiment
from experiments.observation_input import ItemErrors
from experiments.services.covariates import covariates_import, parse_covariate_items

CHUNK_ROWS = 10_000


def _chunks(items):
    """(rows, errors) per chunk of CHUNK_ROWS items, errors keyed `row[i].field` from the file's first row."""
    first_index = 0
    while chunk := list(itertools.islice(items, CHUNK_ROWS)):
        errors = ItemErrors(prefix="row")
        rows = parse_covariate_items(chunk, errors, first_index=first_index)
        first_index += len(chunk)
        yield rows, errors


class Command(BaseCommand):
    requires_system_checks: list = []
    help = "Import covariates (CUPED) for a draft or running experiment from a CSV (with a header) or JSON Lines file."

    def add_arguments(self, parser):
        parser.add_argument("key", help="The experiment's key.")
        parser.add_argument("file", type=Path, help="A .csv file (unit,value[,metric]) or a .jsonl / .ndjson file.")
        parser.add_argument("--format", choices=["csv", "jsonl"], help="Default: from the file's extension.")
        parser.add_argument("--no-progress", action="store_true", help="Do not show the progress bar.")

    def handle(self, *args, key: str, file: Path, format: str | None, no_progress: bool, **options):
        try:
            experiment = Experiment.objects.get(key=key)
        except Experiment.DoesNotExist:
            raise CommandError(f"No experiment with key {key!r}.")
        if not file.is_file():
            raise CommandError(f"No file at {file}.")
        file_format = format or ("csv" if file.suffix.lower() == ".csv" else "jsonl")
        started = time.monotonic()
        try:
            with file.open(encoding="utf-8", newline="") as handle, \
                    tqdm(total=file.stat().st_size, unit="B", unit_scale=True, disable=no_progress,
                         desc=key) as progress:
                lines = _counting(handle, progress)
                items = _csv_items(lines) if file_format == "csv" else _jsonl_items(lines)
                result = covariates_import(experiment=experiment, chunks=_chunks(items))
        except ExperimentError as error:
            # CSV data starts on line 2 (after the header); JSON Lines on line 1.
            raise CommandError(ObservationsCommand._explain(error, first_line=2 if file_format == "csv" else 1)) \
                from None
        except UnicodeDecodeError as error:
            raise CommandError(f"The file is not UTF-8 ({error}); nothing was imported.") from None
        seconds = time.monotonic() - started
        self.stdout.write(
            f"Imported {result.accepted} covariate(s) into {key} from {file} "
            f"({result.duplicates} duplicate(s) skipped: a (unit, metric) seen before keeps its first value) "
            f"in {seconds:.1f} s.\naccepted: {result.accepted}, duplicates: {result.duplicates}"
        )
