"""The dependency rule (DESIGN.md §2), as the import-linter contracts in pyproject.toml encode it.

``lint-imports`` runs for real: on this checkout, where every contract must be kept, and on copies of it
with one forbidden import added, where the contract that import breaks must fail and say which import did
it. Without the second half a contract could be written so that nothing ever breaks it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("console", "widgets", "backends", "themes")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the contracts in ``cwd``/pyproject.toml, on the packages found in ``cwd``."""
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports"
    )
    assert command, "lint-imports is not installed: pip install -e '.[test]'"
    env = {**os.environ, "PYTHONPATH": str(cwd)}  # ahead of the editable install: grimp reads these files
    return subprocess.run(
        [command, "--no-cache", "--no-logo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def said(result: subprocess.CompletedProcess[str]) -> str:
    """What lint-imports printed, with its line wrapping undone."""
    return " ".join((result.stdout + result.stderr).split())


def test_this_checkout_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in said(result)


# (file, line appended to it, the contract's name, what the report must name)
BREAKS = [
    (
        "console/screens/help.py",
        "import console.app  # noqa",
        "screens, dialogs and what they are handed never import the app",
        "console.screens.help -> console.app",
    ),
    (
        "backends/model.py",
        "import textual  # noqa",
        "backends import nothing of the console, the widgets or the themes, and no Textual or Rich",
        "backends.model -> textual",
    ),
    (
        "widgets/format.py",
        "import backends.local.backend  # noqa",
        "widgets import nothing of the console, and of the backends only the data types they render",
        "widgets.format -> backends.local.backend",
    ),
    (
        "backends/demo/world.py",
        "import backends.local.store  # noqa",
        "one backend never imports another",
        "backends.demo.world -> backends.local.store",
    ),
    (
        "console/core/paths.py",
        "import argparse  # noqa",
        "console.core uses no Textual, Rich or argparse",
        "console.core.paths -> argparse",
    ),
    (
        "console/keys.py",
        "import console.cli.exits  # noqa",
        "nothing imports the command line but the command line itself",
        "console.keys -> console.cli.exits",
    ),
    (
        "themes/schema.py",
        "import widgets.format  # noqa",
        "themes import nothing of the console, the widgets or the backends",
        "themes.schema -> widgets.format",
    ),
    (
        "backends/demo/operations.py",
        "from backends.demo import backend  # noqa",
        "No cycles are allowed in backends.demo",
        ".operations -> .backend",
    ),
]


@pytest.mark.parametrize(("path", "line", "contract", "culprit"), BREAKS, ids=[b[0] for b in BREAKS])
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, path: str, line: str, contract: str, culprit: str
) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / path
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")

    result = lint_imports(tmp_path)

    report = said(result)
    assert result.returncode != 0, report
    broken = report.split("Broken contracts", 1)[-1]
    assert contract in broken, report
    assert culprit in broken, report
