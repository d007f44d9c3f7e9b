"""Files the test origin serves and the tests upload: clean, and carrying the EICAR test string.

The EICAR string is assembled at run time so that no file in the repository trips a scanner.
"""

from __future__ import annotations

import hashlib
import io
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024

# A project-made test sample: the tenant's custom signature (testdata/tenant/signatures) names it.
CUSTOM_SAMPLE_MARKER = b"SWG-OPERATOR-TEST-SAMPLE-7f3c9a"

# The 68-byte EICAR anti-virus test file, stored reversed.
_EICAR_REVERSED = "*H+H$!ELIF-TSET-SURIVITNA-DRADNATS-RACIE$}7)CC7)^P(45XZP\\4[PA@%P!O5X"
EICAR = _EICAR_REVERSED[::-1].encode("ascii")
assert len(EICAR) == 68


@dataclass(frozen=True)
class Payload:
    name: str
    path: Path
    size: int
    sha256: str
    infected: bool


def _random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _zip_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buf.getvalue()


def contents() -> dict[str, tuple[bytes, bool]]:
    """name -> (bytes, carries EICAR)."""
    clean = _random_bytes(5 * MIB, seed=5)
    big = _random_bytes(3 * MIB // 2, seed=7)
    return {
        "hello.txt": (b"hello from the test origin\n", False),
        "clean-1KiB.bin": (_random_bytes(1024, seed=1), False),
        "clean-5MiB.bin": (clean, False),
        "eicar.com": (EICAR, True),
        "eicar.zip": (_zip_of("eicar.com", EICAR), True),
        # EICAR in the middle of a 1.5 MiB body: only a scan of the whole body finds it.
        "eicar-embedded-1.5MiB.bin": (big[: len(big) // 2] + EICAR + big[len(big) // 2 :], True),
        "custom-sample.bin": (
            _random_bytes(100 * 1024, seed=9) + CUSTOM_SAMPLE_MARKER + _random_bytes(1024, seed=10),
            True,
        ),
    }


def write_payloads(directory: Path) -> dict[str, Payload]:
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, Payload] = {}
    for name, (data, infected) in contents().items():
        path = directory / name
        path.write_bytes(data)
        out[name] = Payload(name, path, len(data), hashlib.sha256(data).hexdigest(), infected)
    return out
