"""The installed fleetdeck's version, as its distribution metadata says (one place for the CLI's
``--version``, the local node's ``NodeInfo.version`` and the node API's OpenAPI document)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("fleetdeck")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
