"""`manage.py import_observations KEY FILE`: backfill observations from CSV or JSON Lines.

The same rules as the REST endpoint apply, and the whole file is one transaction: if any
row breaks a rule, nothing of the file is stored.

On PostgreSQL a CSV file is first imported inside the database (experiments.services.
csv_import: COPY of the raw file, then one checking INSERT). If that path finds anything it
does not recognise as plainly valid, it writes nothing and the file is read again row by
row: in chunks of 10,000 through the ingestion service, with every rule break named by line
and field. JSON Lines files, and SQLite, always go row by row. Memory stays flat either way.
"""

import csv
import itertools
import queue
import threading
import time
from pathlib import Path

import orjson
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from experiments.errors import ExperimentError
from experiments.models import Experiment
from experiments.observation_input import ItemErrors, parse_items
from experiments.services.csv_import import observations_import_csv
from experiments.services.ingestion import IngestResult, observations_ingest

CHUNK_ROWS = 10_000
MAX_ERRORS_SHOWN = 20
CSV_NUMBER_COLUMNS = ("value", "latency_ms")


def _csv_items(lines):
    """CSV rows as items: empty cells are absent, numeric columns parsed (bad ones left for the rules)."""
    for row in csv.DictReader(lines):
        item = {name: cell for name, cell in row.items() if name and cell not in ("", None)}
        for column in CSV_NUMBER_COLUMNS:
            if column in item:
                try:
                    item[column] = float(item[column])
                except ValueError:
                    pass
        yield item


def _jsonl_items(lines):
    for line in lines:
        if line.strip():
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                yield None  # reported as "not a JSON object" with its line number


class Command(BaseCommand):
    requires_system_checks: list = []  # a backfill does not need the project's checks, and they take a second
    help = "Import observations for a running experiment from a CSV (with a header) or JSON Lines file."

    file_help = "A .csv file or a .jsonl / .ndjson file."

    def add_arguments(self, parser):
        parser.add_argument("key", help="The experiment's key.")
        parser.add_argument("file", type=Path, help=self.file_help)
        parser.add_argument("--format", choices=["csv", "jsonl"], help="Default: from the file's extension.")
        parser.add_argument("--no-progress", action="store_true", help="Do not show the progress bar.")

    @staticmethod
    def _experiment_and_format(key: str, file: Path, file_format: str | None) -> tuple[Experiment, str]:
        """The experiment and the file's format ("csv" or "jsonl"), or CommandError."""
        try:
            experiment = Experiment.objects.get(key=key)
        except Experiment.DoesNotExist:
            raise CommandError(f"No experiment with key {key!r}.")
        if not file.is_file():
            raise CommandError(f"No file at {file}.")
        return experiment, file_format or ("csv" if file.suffix.lower() == ".csv" else "jsonl")

    def handle(self, *args, key: str, file: Path, format: str | None, no_progress: bool, **options):
        experiment, file_format = self._experiment_and_format(key, file, format)
        started = time.monotonic()
        result = self._import(experiment, file, file_format, no_progress)
        seconds = time.monotonic() - started
        rows = result.accepted + result.duplicates
        self.stdout.write(
            f"Imported {result.accepted} observation(s) into {key} from {file} "
            f"({result.duplicates} duplicate id(s) skipped) in {seconds:.1f} s "
            f"({rows / max(seconds, 1e-9):,.0f} rows/s)."
        )

    def _import(self, experiment: Experiment, file: Path, file_format: str, no_progress: bool) -> IngestResult:
        """A CSV file inside the database first (`_import_csv`); where that gives up, or for JSON
        Lines, row by row (`_import_row_by_row`), whose errors name each line and field."""
        try:
            result = None
            if file_format == "csv":
                with self._progress(file, experiment.key, no_progress) as progress:
                    result = self._import_csv(experiment, file, progress.update)
                if result is None:
                    self.stderr.write("Checking the file row by row (it is read again) ...")
            if result is None:
                result = self._import_row_by_row(experiment, file, file_format, no_progress)
        except ExperimentError as error:
            # CSV data starts on line 2 (after the header); JSON Lines on line 1.
            raise CommandError(self._explain(error, first_line=2 if file_format == "csv" else 1)) from None
        return result

    @staticmethod
    def _import_csv(experiment: Experiment, file: Path, on_bytes) -> IngestResult | None:
        return observations_import_csv(experiment=experiment, path=file, on_bytes=on_bytes)

    @staticmethod
    def _progress(file: Path, key: str, disabled: bool) -> tqdm:
        return tqdm(total=file.stat().st_size, unit="B", unit_scale=True, disable=disabled, desc=key)

    def _import_row_by_row(self, experiment: Experiment, file: Path, file_format: str,
                           no_progress: bool) -> IngestResult:
        accepted = duplicates = 0
        with file.open(encoding="utf-8", newline="") as handle, \
                self._progress(file, experiment.key, no_progress) as progress:
            lines = _counting(handle, progress)
            items = _csv_items(lines) if file_format == "csv" else _jsonl_items(lines)
            parser = _ChunkParser(items)
            try:
                with transaction.atomic():
                    for rows, errors, _ in parser:
                        if errors:
                            raise ExperimentError("malformed rows", errors=errors.by_path)
                        result = observations_ingest(experiment=experiment, rows=rows)
                        accepted += result.accepted
                        duplicates += result.duplicates
            finally:
                parser.stop()
        return IngestResult(accepted=accepted, duplicates=duplicates)

    @staticmethod
    def _explain(error: ExperimentError, first_line: int) -> str:
        problems = error.extra.get("errors")
        if not problems:
            return f"{error.detail} Nothing was imported."
        lines = []
        for path, messages in itertools.islice(problems.items(), MAX_ERRORS_SHOWN):
            # Paths look like row[12].value or observations[12].value: report the file line.
            index = int(path[path.index("[") + 1:path.index("]")])
            field = path.split(".", 1)[1] if "." in path else ""
            lines.append(f"  line {index + first_line}: {field}: {'; '.join(messages)}")
        more = len(problems) - MAX_ERRORS_SHOWN
        if more > 0:
            lines.append(f"  ... and {more} more")
        return "Nothing was imported; these rows break a rule:\n" + "\n".join(lines)


class _ChunkParser:
    """Reads and parses the next chunk in a thread while the database stores the current one.

    Parsing is Python and storing is mostly PostgreSQL's time (psycopg releases the GIL while
    it waits), so overlapping them takes the import from their sum towards the larger one.
    """

    _DONE = object()

    def __init__(self, items):
        self._items = items
        self._chunks: queue.Queue = queue.Queue(maxsize=2)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="import-parser", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        first_index = 0
        try:
            while not self._stopped.is_set() and (chunk := list(itertools.islice(self._items, CHUNK_ROWS))):
                errors = ItemErrors(prefix="row")
                rows = parse_items(chunk, errors, first_index=first_index)
                first_index += len(chunk)
                self._put((rows, errors, len(chunk)))
            self._put(self._DONE)
        except Exception as error:  # handed to the main thread, which raises it
            self._put(error)

    def _put(self, value) -> None:
        while not self._stopped.is_set():
            try:
                self._chunks.put(value, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self):
        while (value := self._chunks.get()) is not self._DONE:
            if isinstance(value, Exception):
                raise value
            yield value

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def _counting(handle, progress):
    """Yield the file's lines while advancing the progress bar by their size."""
    for line in handle:
        progress.update(len(line))
        yield line
