"""The http backend: a remote node served by `fleetdeck node serve`.

settings.py    the config entry, checked up front (url, token, TLS, timeouts)
client.py      one pooled connection: requests, retries, answers decoded into the wire model
failures.py    what went wrong, in words (refused, timed out, TLS, error answers, not the model)
retry.py       backoff with jitter
access.py      what our token may do there: the NodeInfo and capabilities the console sees
log_stream.py  the SSE log stream, resumable by seq
backend.py     HttpBackend, the Backend protocol over all of the above
"""

from .backend import HttpBackend

__all__ = ["HttpBackend"]
