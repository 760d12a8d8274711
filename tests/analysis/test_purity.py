"""The analysis package stays pure Python statistics: it never imports the web stack."""

import ast
from pathlib import Path

import pytest

ANALYSIS_DIR = Path(__file__).resolve().parents[2] / "analysis"
FORBIDDEN = {"django", "rest_framework", "celery", "experiments"}
MODULES = sorted(ANALYSIS_DIR.rglob("*.py"))


def imported_top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_analysis_package_has_modules_to_check():
    assert ANALYSIS_DIR / "power.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ANALYSIS_DIR)))
def test_analysis_modules_never_import_django_drf_celery_or_experiments(path):
    assert imported_top_level_names(path) & FORBIDDEN == set()
