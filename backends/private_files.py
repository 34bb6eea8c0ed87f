"""Files that hold credentials: who may read or write them, checked on the open file, and made atomically.

A credential file is only as private as its mode, its owner and its directory. Each check here runs on the
open descriptor (``fstat``), and every open uses ``O_NOFOLLOW``: a symbolic link, or a file swapped in between
a check and a read, is refused rather than followed. Each refusal is one line naming the file, what is wrong
and what to do about it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import secrets
import stat
from pathlib import Path

MAX_SIZE = 1024 * 1024  # a credential file is small; a huge one is not ours
_OTHERS_READ = stat.S_IRGRP | stat.S_IROTH
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO must not hang us


class PrivateFileError(Exception):
    """A credential file that must not be used; the message is one line naming it."""


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def mode_text(mode: int) -> str:
    return f"mode {stat.S_IMODE(mode):04o}"


def read_checked(path: Path, what: str, *, others_may_read: bool = False) -> tuple[str, os.stat_result]:
    """The text of ``path`` and its ``fstat``, or :class:`PrivateFileError` when it is a symbolic link or not
    a regular file, is writable by group or others, belongs to another user (root's files excepted: root
    can write anything anyway), or (unless ``others_may_read``) is readable by group or others.
    ``FileNotFoundError`` passes through: a missing file means something different to each caller."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PrivateFileError(f"{what} {path} is a symbolic link: refusing to follow it") from None
        raise PrivateFileError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        check_mode(path, what, info, others_may_read=others_may_read)
        data = file.read(MAX_SIZE + 1)
    if len(data) > MAX_SIZE:
        raise PrivateFileError(f"{what} {path} is larger than {MAX_SIZE} bytes: not a credential file")
    try:
        return data.decode("utf-8"), info
    except UnicodeDecodeError:
        raise PrivateFileError(f"{what} {path} is not UTF-8 text") from None


def check_mode(path: Path, what: str, info: os.stat_result, *, others_may_read: bool = False) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise PrivateFileError(f"{what} {path} is not a regular file")
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        raise PrivateFileError(
            f"{what} {path} is owned by {user_name(info.st_uid)}, not by {user_name(me)}: whoever owns it "
            "can change it; use a file of your own"
        )
    if info.st_mode & _OTHERS_WRITE:
        raise PrivateFileError(
            f"{what} {path} can be written by group or others ({mode_text(info.st_mode)}): anyone who can "
            f"write it can change who may call the node; chmod 600 {path}"
        )
    if not others_may_read and info.st_mode & _OTHERS_READ:
        raise PrivateFileError(
            f"{what} {path} can be read by others ({mode_text(info.st_mode)}): delete it (a new one is made "
            f"on the next start) or chmod 600 {path}"
        )


def readable_by_others(info: os.stat_result) -> bool:
    return bool(info.st_mode & _OTHERS_READ)


def ensure_private_dir(directory: Path, what: str) -> None:
    """``directory``, made with mode 0700 when missing; refused when another user owns it or group or
    others may write it (they could swap the file inside). Readable is fine: the files in it are 0600."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    info = os.stat(directory)
    me = os.geteuid()
    if not stat.S_ISDIR(info.st_mode):
        raise PrivateFileError(f"{what}: {directory} is not a directory")
    if info.st_uid != me:
        raise PrivateFileError(
            f"{what}: {directory} is owned by {user_name(info.st_uid)}, not by {user_name(me)}"
        )
    if info.st_mode & _OTHERS_WRITE:
        raise PrivateFileError(
            f"{what}: {directory} can be written by group or others ({mode_text(info.st_mode)}); "
            f"chmod 700 {directory}"
        )


def create_private(path: Path, text: str) -> bool:
    """Make ``path`` (mode 0600) holding ``text`` unless it exists; False when it did (another process
    may have won the race: read its file). Written to a temporary file first and linked into place, so
    nobody ever reads a half-written file, and ``link`` never replaces anything, a symlink included."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path, follow_symlinks=False)
        except FileExistsError:
            return False
        _fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
