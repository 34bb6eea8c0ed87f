"""`fleetdeck node serve`: any backend served over HTTP (see backends/node_api.py for the contract)."""
