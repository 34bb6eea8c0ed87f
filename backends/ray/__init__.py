"""The ray backend: a Ray cluster through its dashboard's HTTP API (no Ray import, plain httpx).

settings.py  the config entry, checked up front (url, token, TLS, state dir, options)
client.py    one pooled connection: JSON requests, retries with jitter for calls safe to repeat
failures.py  what went wrong, in words (refused, timed out, 401/403 → AuthFailed, Ray's error text)
version.py   which dashboards are understood (/api/version)
machines.py  nodes and node summary → cluster totals, per-machine labels, GPUs
actors.py    actors → agents
jobs.py      jobs → phases and tasks
job_logs.py  job logs, polled and numbered so resume works
state.py     checkpoints, audit trail and rolled-back jobs, in a JSON file in the state dir
actions.py   dispatch, stop, checkpoint, rollback
backend.py   RayBackend, the Backend protocol over all of the above
"""

from .backend import RayBackend

__all__ = ["RayBackend"]
