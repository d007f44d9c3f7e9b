"""Files of each type the file-type controls recognise, made here byte by byte: a runnable
x86-64 Linux ELF, a Windows PE32 executable, a PDF, a file of a customer-defined type, and
archives around them. Names and extensions are deliberately misleading where it matters: the
proxy must judge the content.
"""

from __future__ import annotations

import io
import struct
import zipfile

from e2e.dataplane.payloads import encrypted_zip_of

# contentControls.fileTypes.custom of the test tenant: these bytes at offset 4.
CUSTOM_MAGIC = b"SWG!"
CUSTOM_OFFSET = 4
ELF_EXIT_CODE = 42


def tiny_elf() -> bytes:
    """A static x86-64 ELF executable that exits with ELF_EXIT_CODE."""
    code = bytes([0xBF, ELF_EXIT_CODE, 0, 0, 0, 0xB8, 60, 0, 0, 0, 0x0F, 0x05])  # exit(42)
    base, header_size = 0x400000, 64 + 56
    size = header_size + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, 0x3E, 1, base + header_size, 64, 0, 0, 64, 56, 1, 64, 0, 0
    )
    program = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return header + program + code


def tiny_pe() -> bytes:
    """A minimal, well-formed PE32 console executable (one .text section that returns)."""
    dos = bytearray(64)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 64)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x14C, 1, 0, 0, 0, 224, 0x0102)
    optional = struct.pack(
        "<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII",
        0x10B, 0, 0, 0x200, 0, 0, 0x1000, 0x1000, 0x1000, 0x400000, 0x1000, 0x200,
        4, 0, 0, 0, 4, 0, 0, 0x2000, 0x200, 0, 3, 0,
        0x100000, 0x1000, 0x100000, 0x1000, 0, 16,
    ) + bytes(16 * 8)  # fmt: skip
    section = b".text\0\0\0" + struct.pack(
        "<IIIIIIHHI", 0x200, 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020
    )
    headers = bytes(dos) + coff + optional + section
    return headers.ljust(0x200, b"\0") + b"\xc3".ljust(0x200, b"\0")


def tiny_pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def custom_typed() -> bytes:
    return b"\0\0\0\0" + CUSTOM_MAGIC + b" a file of the customer's own type\n"


def zip_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buf.getvalue()


def file_type_payloads() -> dict[str, bytes]:
    """name -> bytes, as the origin serves them under /files/."""
    text = b"nothing but text\n" * 64
    return {
        "tool.elf": tiny_elf(),
        "setup.exe": tiny_pe(),
        "readme.txt": tiny_elf(),  # an executable by content, text by name
        "report.pdf": tiny_pdf(),
        "custom.dat": custom_typed(),
        "elf-inside.zip": zip_of("notes.txt", tiny_elf()),
        "text-inside.zip": zip_of("notes.txt", text),
        "text-encrypted.zip": encrypted_zip_of("notes.txt", text),
        "plain.txt": text,
    }
