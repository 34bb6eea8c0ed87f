"""Loopback addresses, and which local users listen on a TCP port.

``listener_uids`` is asked before a client hands its local operator token over.

Any local user may listen on a free loopback port. If the owner's node is down, another user could take
its port and collect the token the owner's console sends on its next reconnect. So the token goes only to
a port this same user (or root) listens on; a node run by anyone else could not accept it anyway, since
every user's token is their own. Linux says who listens in ``/proc/net/tcp`` and ``tcp6``; where those
cannot be read (another OS), the answer is "unknown" and the caller decides.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

_LISTEN = "0A"
_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def listener_uids(port: int) -> set[int] | None:
    """The uids with a listening TCP socket on ``port`` (any local address), or None when unknown."""
    uids: set[int] = set()
    readable = False
    for table in _TABLES:
        try:
            lines = table.read_text(encoding="ascii", errors="replace").splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) < 8 or fields[3] != _LISTEN:
                continue
            _, _, port_hex = fields[1].rpartition(":")
            try:
                if int(port_hex, 16) == port:
                    uids.add(int(fields[7]))
            except ValueError:
                continue
    return uids if readable else None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (and ::ffff:127.x) or the name localhost."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
