"""The owner's credential for a loopback node that has no token configured: the local operator token.

A node served without ``--tokens`` answers only its owner, who proves it with the token in
``backends.local_token``'s file. That file may not exist yet when the console starts (the server makes it
on its first start), so it is read when a request is about to go, and again after a 401 (the file was
replaced). It is sent only to a port this user (or root) listens on: see ``backends.loopback``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from backends.local_token import read_token
from backends.loopback import listener_uids
from backends.private_files import user_name

OWNER_CHECK_S = 5.0  # how long a "this port is ours" answer is trusted before /proc is read again


@dataclass
class LocalOperatorAuth(httpx.Auth):
    path: Path
    port: int
    note: str = ""  # why the token was or was not sent, for a 401's message
    _token: str | None = field(default=None, repr=False)
    _owner_checked_at: float = -OWNER_CHECK_S
    _owner_ok: bool = False

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._current(reload=False)
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            fresh = self._current(reload=True)
            if fresh is not None and fresh != token:
                request.headers["Authorization"] = f"Bearer {fresh}"
                yield request

    def _current(self, *, reload: bool) -> str | None:
        if not self._port_is_ours():
            return None
        if self._token is None or reload:
            self._token, where = read_token(self.path)
            self.note = f"{where} was sent and refused" if self._token else where
        return self._token

    def _port_is_ours(self) -> bool:
        now = time.monotonic()
        if now - self._owner_checked_at < OWNER_CHECK_S and self._owner_ok:
            return True
        self._owner_checked_at = now
        uids = listener_uids(self.port)
        me = os.geteuid()
        if uids is None:  # no /proc/net here: nothing to check with; the token file is still private
            self._owner_ok = True
        else:
            strangers = sorted(uids - {me, 0})
            self._owner_ok = bool(uids) and not strangers
            if strangers:
                self.note = (
                    f"the local operator token was not sent: port {self.port} is listened on by "
                    f"{', '.join(user_name(uid) for uid in strangers)}, not by {user_name(me)}"
                )
            elif not uids:
                self.note = f"the local operator token was not sent: nothing listens on port {self.port}"
        return self._owner_ok
