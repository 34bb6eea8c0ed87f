"""fleetdeck's benchmark harness: ``python -m benchmarks`` (see README, "Benchmarks")."""
