"""URL regexes checked the way Squid compiles them: POSIX extended regular expressions, by the C
library's own `regcomp` (Squid's `url_regex -i` compiles each line with
`REG_EXTENDED | REG_NOSUB | REG_ICASE`).

Why the C library and not a validator in Python: Python's `re` is not POSIX (it accepts `(?i)`,
`(?P<n>...)`, `[[:nosuchclass:]]`; it refuses `a**` and `x{1,2}{3}`, which POSIX allows), and a
faithful reimplementation of glibc's ERE grammar is a second parser to keep in step with the one
that matters. The proxy image and the operator image are both Debian with glibc, so the
operator asks the same `regcomp` Squid will use.

Not part of the pure core (`api`, `render`), which does no I/O and loads no native code (an
import-linter contract forbids `ctypes` there): the reconcile loop and `swg-operator render`
call `url_regex_problems` after parsing a spec. Compiling a pattern has no side effect but
memory, freed at once; patterns are at most 1024 printable ASCII characters (the schema).
Without glibc (another C library numbers the flags differently) nothing is checked: `checked()`
says so, and Squid's own parse is then the only check.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Final

from swg_operator.api import SecureWebGatewaySpec

# glibc's <regex.h>
REG_EXTENDED: Final = 1
REG_ICASE: Final = 2
REG_NOSUB: Final = 8
SQUID_URL_REGEX_FLAGS: Final = REG_EXTENDED | REG_NOSUB | REG_ICASE
_REGEX_T_BYTES: Final = 256  # sizeof(regex_t) is 64 on 64-bit glibc: room to spare


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version"):
        return None  # not glibc: flag values and behaviour may differ from Squid's
    libc.regcomp.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    libc.regcomp.restype = ctypes.c_int
    libc.regerror.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    libc.regerror.restype = ctypes.c_size_t
    libc.regfree.argtypes = [ctypes.c_void_p]
    libc.regfree.restype = None
    return libc


def checked() -> bool:
    """Whether patterns are checked here (the C library is glibc)."""
    return _libc() is not None


def posix_ere_error(pattern: str, flags: int = SQUID_URL_REGEX_FLAGS) -> str | None:
    """glibc's `regcomp` message for `pattern` (e.g. "Invalid range end"), or None when it
    compiles (or cannot be checked here)."""
    libc = _libc()
    if libc is None:
        return None
    buffer = ctypes.create_string_buffer(_REGEX_T_BYTES)
    code = libc.regcomp(buffer, pattern.encode("utf-8"), flags)
    if code == 0:
        libc.regfree(buffer)
        return None
    message = ctypes.create_string_buffer(256)
    libc.regerror(code, buffer, message, len(message))
    # regcomp frees what it allocated when it fails.
    return message.value.decode("utf-8", errors="replace") or f"regcomp error {code}"


def url_regex_problems(spec: SecureWebGatewaySpec) -> tuple[str, ...]:
    """One "field: message" line per URL regex of `spec` Squid would not compile."""
    lists = [("spec.urlFiltering.deny.urlRegex", spec.url_filtering.deny.url_regex)]
    for index, policy in enumerate(spec.url_filtering.policies):
        lists.append((f"spec.urlFiltering.policies[{index}].deny.urlRegex", policy.deny.url_regex))
    problems: list[str] = []
    for field, patterns in lists:
        for index, pattern in enumerate(patterns):
            error = posix_ere_error(pattern)
            if error is not None:
                problems.append(
                    f"{field}[{index}]: {pattern!r} is not a POSIX extended regular expression "
                    f"as the proxy compiles it ({error}); Squid would refuse or skip the rule"
                )
    return tuple(problems)
