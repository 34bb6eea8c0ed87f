"""The wheel carries every package of the source tree: packages are found, never listed by hand."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_in_the_tree_is_in_the_distribution() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(find_packages(str(ROOT), include=config["packages"]["find"]["include"]))
    in_tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("console", "widgets", "backends", "themes")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert in_tree <= found, f"left out of the wheel: {sorted(in_tree - found)}"
    assert not {name for name in found if name.split(".")[0] == "tests"}
