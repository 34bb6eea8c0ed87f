"""The private parts of Textual the widgets lean on still exist in the installed Textual.

A widget that reaches into Textual's internals lists them, as dotted paths, in a module-level
``TEXTUAL_PRIVATE_PARTS`` next to the code that uses them. An upgrade that renames one would otherwise not
fail loudly: an override of a private render step is simply never called again, and an assignment to a
private cache just makes a new attribute. Here it fails by name, with the file that leans on it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

import textual

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("widgets", "console")


def leaning_files() -> dict[Path, ModuleType]:
    """Every file under the packages that declares the Textual internals it uses, imported."""
    found = {}
    for path in sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")):
        if "TEXTUAL_PRIVATE_PARTS" in path.read_text(encoding="utf-8"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[path] = importlib.import_module(name)
    return found


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` (a module, then attributes) names something in the installed Textual. The last
    attribute of a class may be one its instances get in ``__init__``, so a fresh instance is asked too."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            owner: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        attributes = parts[cut:]
        break
    else:
        return False
    for index, attribute in enumerate(attributes):
        if hasattr(owner, attribute):
            owner = getattr(owner, attribute)
        elif index == len(attributes) - 1 and isinstance(owner, type):
            try:
                return hasattr(owner(), attribute)
            except Exception:
                return False
        else:
            return False
    return True


def test_every_private_part_of_textual_the_widgets_use_still_exists() -> None:
    files = leaning_files()
    assert files, "no file declares TEXTUAL_PRIVATE_PARTS: widgets/key_footer.py does"
    missing = [
        f"{path.relative_to(ROOT)} leans on Textual's private `{part}`, "
        f"which Textual {textual.__version__} no longer has"
        for path, module in files.items()
        for part in module.TEXTUAL_PRIVATE_PARTS
        if not resolves(part)
    ]
    assert not missing, "\n".join(missing)


def private_imports(source: str) -> list[str]:
    """What ``source`` imports of Textual's private parts, as dotted paths: a name from a private module
    (``from textual.widgets._footer import FooterKey``) or a private name (``from textual.keys import
    _character_to_key``), at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "textual":
            private_module = any(part.startswith("_") for part in node.module.split("."))
            found += [
                f"{node.module}.{a.name}" for a in node.names if private_module or a.name.startswith("_")
            ]
        elif isinstance(node, ast.Import):
            found += [
                a.name
                for a in node.names
                if a.name.split(".")[0] == "textual" and any(p.startswith("_") for p in a.name.split("."))
            ]
    return found


def test_each_file_that_imports_a_private_textual_part_lists_it() -> None:
    """A private import added without its line in TEXTUAL_PRIVATE_PARTS would escape the check above."""
    files = leaning_files()
    unlisted = [
        f"{path.relative_to(ROOT)} imports Textual's private `{part}`, not in its TEXTUAL_PRIVATE_PARTS"
        for path in sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))
        for part in private_imports(path.read_text(encoding="utf-8"))
        if path not in files or part not in files[path].TEXTUAL_PRIVATE_PARTS
    ]
    assert not unlisted, "\n".join(unlisted)


def test_each_listed_part_is_used_by_the_file_that_lists_it() -> None:
    """A part the code stopped using is dropped from the list, so the list stays what the code needs."""
    stale = [
        f"{path.relative_to(ROOT)} lists `{part}` but does not use `{part.rsplit('.', 1)[1]}`"
        for path, module in leaning_files().items()
        for part in module.TEXTUAL_PRIVATE_PARTS
        if path.read_text(encoding="utf-8").count(part.rsplit(".", 1)[1]) < 2  # once is the list itself
    ]
    assert not stale, "\n".join(stale)


def test_a_moved_part_is_caught() -> None:
    # what an upgrade that renames or moves a private part looks like to the check
    assert resolves("textual.widgets.DataTable._update_count")  # an instance attribute, set in __init__
    assert resolves("textual.widgets._footer.FooterKey")
    assert not resolves("textual.widgets.DataTable._update_counter")
    assert not resolves("textual.widgets._data_table.TwoWayDictionary")
    assert not resolves("textual.widgets._no_such_module.FooterKey")


def test_private_imports_are_found_wherever_they_are() -> None:
    source = """
import textual._two_way_dict
from textual.widgets import DataTable
from textual.widgets._footer import FooterKey

def later():
    from textual.keys import (
        REPLACED_KEYS,
        _character_to_key,
    )
"""
    assert private_imports(source) == [
        "textual._two_way_dict",
        "textual.widgets._footer.FooterKey",
        "textual.keys._character_to_key",
    ]
