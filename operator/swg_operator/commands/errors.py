"""Error messages of the command line: they name the file or object and say what to do."""

from __future__ import annotations

import errno
from pathlib import Path

_HINTS = {
    errno.ENOENT: "check the path (relative paths start from the current directory)",
    errno.EACCES: "check the file's permissions",
    errno.EISDIR: "name a file, not a directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.ENOSPC: "free space on that file system",
    errno.EROFS: "the file system is read-only: choose another path",
}


def file_error(exc: OSError, what: str) -> str:
    """`<path>: <what>: <reason>; <what to do>` for an OSError raised on a file."""
    path = exc.filename if exc.filename is not None else "(unknown file)"
    reason = (exc.strerror or str(exc)).lower()
    hint = _HINTS.get(exc.errno or 0)
    return f"{Path(str(path))}: {what}: {reason}" + (f"; {hint}" if hint else "")
