"""fleetdeck-backend-static: a fleetdeck backend that shows a node described in a TOML or JSON file.

fleet_file.py  the file's format (fleetdeck's wire types), read and checked
backend.py     StaticBackend and its StaticOptions, registered as the ``static`` backend
"""

from .backend import StaticBackend, StaticOptions

__all__ = ["StaticBackend", "StaticOptions"]
