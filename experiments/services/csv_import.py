"""Importing a CSV file of observations inside the database: the fast way for import_observations.

Where the engine can (PostgreSQL, experiments.db.postgresql_csv, whose docstring says how
and why it is fast) the whole file is stored, checked and summed without Python touching a
row. This path only ever accepts a subset of what the row-by-row path accepts: a header it
does not expect, or anything the database does not recognise as plainly valid, makes it
give up with nothing written, and `import_observations` then runs the row-by-row path over
the file, which either imports it all the same or names every offending line and field.
The tests check that both paths store the same rows and that every rule break falls through.
"""

import csv
from collections.abc import Callable
from pathlib import Path

from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from experiments import db
from experiments.lock import ensure_taking_observations
from experiments.models import Experiment
from experiments.observation_input import FIELDS
from experiments.services.ingestion import IngestResult


def observations_import_csv(*, experiment: Experiment, path: Path,
                            on_bytes: Callable[[int], None] = lambda n: None) -> IngestResult | None:
    """Import the whole CSV file in the database; None (and nothing written) if it needs the row-by-row path.

    Raises WrongState like the ingestion service when the experiment takes no observations.
    """
    if not db.csv_import_supported():
        return None
    columns = csv_header(path, FIELDS)
    if columns is None:
        return None
    now = timezone.now()
    ensure_taking_observations(experiment, now)
    # With nothing stored yet, no id and no unit can be repeated from before (see import_csv).
    fresh = not Experiment.objects.filter(pk=experiment.pk, observation_count__gt=0).exists()
    try:
        with transaction.atomic():
            counts = db.import_csv(experiment=experiment, path=path, columns=columns, now=now, fresh=fresh,
                                   on_bytes=on_bytes)
            if counts is None:
                return None
            accepted, duplicates = counts
            Experiment.objects.filter(pk=experiment.pk).update(observation_count=F("observation_count") + accepted)
    except DatabaseError:
        return None   # rolled back: the row-by-row path imports the file or names its errors
    return IngestResult(accepted=accepted, duplicates=duplicates)


def csv_header(path: Path, fields: frozenset[str]) -> list[str] | None:
    """The column names, if they are all known `fields`, each once, with unit and value (else None:
    the row-by-row path reads the file and names what is wrong)."""
    with path.open(encoding="utf-8", newline="") as handle:
        try:
            names = next(csv.reader(handle), None)
        except (csv.Error, UnicodeDecodeError):
            return None
    if not names or len(set(names)) != len(names) or not set(names) <= fields or not {"unit", "value"} <= set(names):
        return None
    return names
