"""Files the test origin serves and the tests upload: clean, and carrying the EICAR test string.

The EICAR string is assembled at run time so that no file in the repository trips a scanner.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zipfile
import zlib
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


# The anti-virus limit of the scan-limit test tenants (testdata/tenant/tenant-limits*.yaml:
# spec.antivirus.maxScanSize 1Mi): objects are made just under and well over it.
SCAN_LIMIT = 1 * MIB
ZIP_PASSWORD = b"infected"


def _zipcrypto_keys(password: bytes) -> list[int]:
    keys = [0x12345678, 0x23456789, 0x34567890]
    for byte in password:
        _zipcrypto_update(keys, byte)
    return keys


def _crc32_byte(crc: int, byte: int) -> int:
    return zlib.crc32(bytes([byte]), crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def _zipcrypto_update(keys: list[int], byte: int) -> None:
    keys[0] = _crc32_byte(keys[0], byte)
    keys[1] = (keys[1] + (keys[0] & 0xFF)) & 0xFFFFFFFF
    keys[1] = (keys[1] * 134775813 + 1) & 0xFFFFFFFF
    keys[2] = _crc32_byte(keys[2], keys[1] >> 24)


def _zipcrypto_encrypt(password: bytes, data: bytes) -> bytes:
    """Traditional PKWARE ("ZipCrypto") encryption, which Python's zipfile reads but does not
    write."""
    keys = _zipcrypto_keys(password)
    out = bytearray()
    for byte in data:
        temp = (keys[2] | 2) & 0xFFFF
        out.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
        _zipcrypto_update(keys, byte)
    return bytes(out)


def encrypted_zip_of(name: str, data: bytes, password: bytes = ZIP_PASSWORD) -> bytes:
    """A zip archive holding `data` stored (not compressed) and encrypted with `password`."""
    crc = zlib.crc32(data)
    header = random.Random(11).randbytes(11) + bytes([crc >> 24])  # last byte checks the key
    encrypted = _zipcrypto_encrypt(password, header + data)
    raw_name = name.encode()
    flags, method, when, day = 0x1, 0, 0, 0x21
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, flags, method, when, day, crc, len(encrypted),
        len(data), len(raw_name), 0,
    ) + raw_name  # fmt: skip
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, when, day, crc,
        len(encrypted), len(data), len(raw_name), 0, 0, 0, 0, 0, 0,
    ) + raw_name  # fmt: skip
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(encrypted), 0
    )
    return local + encrypted + central + end


def _ending_with_eicar(size: int, seed: int) -> bytes:
    """`size` bytes of random data whose last bytes are EICAR: only a scan of all of it finds
    the test virus."""
    return _random_bytes(size - len(EICAR), seed=seed) + EICAR


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
        # Around the scan-limit tenants' maxScanSize (SCAN_LIMIT).
        "eicar-encrypted.zip": (encrypted_zip_of("eicar.com", EICAR), True),
        "eicar-at-end-under-limit.bin": (_ending_with_eicar(SCAN_LIMIT - 1024, seed=12), True),
        "eicar-at-end-over-limit.bin": (_ending_with_eicar(3 * SCAN_LIMIT, seed=13), True),
        "clean-under-limit.bin": (_random_bytes(SCAN_LIMIT * 3 // 4, seed=14), False),
        "custom-sample.bin": (
            _random_bytes(100 * 1024, seed=9) + CUSTOM_SAMPLE_MARKER + _random_bytes(1024, seed=10),
            True,
        ),
    }


def write_payloads(directory: Path) -> dict[str, Payload]:
    from e2e.dataplane.filetypes import file_type_payloads  # it builds on this module

    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, Payload] = {}
    files = contents() | {name: (data, False) for name, data in file_type_payloads().items()}
    for name, (data, infected) in files.items():
        path = directory / name
        path.write_bytes(data)
        out[name] = Payload(name, path, len(data), hashlib.sha256(data).hexdigest(), infected)
    return out
