"""Downloadable files: signed, expiring URLs (as a storage service would issue), small PDFs and PNGs.

Aurora hands out file URLs that work without the API key and expire (agreement PDFs after 15
minutes). The emulator signs ``/files/{token}`` URLs with a per-process secret (HMAC-SHA256 over
what the token names and when it expires) and renders a one-page PDF naming the record when asked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import time
import zlib
from typing import Any, Optional

from .errors import AuroraError

FILES_PREFIX = "/files"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, payload: dict[str, Any], ttl_real_s: float) -> str:
    """A URL token for ``payload`` valid for ``ttl_real_s`` real seconds."""
    body = _b64(json.dumps({**payload, "exp": time.time() + ttl_real_s}, separators=(",", ":")).encode())
    signature = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def verify(secret: bytes, token: str) -> dict[str, Any]:
    """The payload of a valid, unexpired token; 403 otherwise (as an expired storage URL answers)."""
    body, _, signature = token.partition(".")
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(signature, expected):
        raise AuroraError(403, "Invalid download URL.")
    payload = json.loads(_unb64(body))
    if payload["exp"] < time.time():
        raise AuroraError(403, "This download URL has expired; request a new one.")
    return payload


def file_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{FILES_PREFIX}/{token}"


def _pdf_text(text: str) -> str:
    text = text.encode("latin-1", "replace").decode("latin-1")
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_document(title: str, lines: list[str], subject: Optional[str] = None) -> bytes:
    """A valid one-page PDF (Helvetica) with ``title`` and ``lines``."""
    commands = ["BT", "/F1 16 Tf", "72 720 Td", f"({_pdf_text(title)}) Tj", "/F1 11 Tf"]
    for line in lines:
        commands += ["0 -18 Td", f"({_pdf_text(line)}) Tj"]
    commands.append("ET")
    stream = "\n".join(commands).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Title (%s) /Subject (%s) /Producer (Aurora emulator) >>" % (
            _pdf_text(title).encode("latin-1"), _pdf_text(subject or title).encode("latin-1")),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def png_image(seed: str, width: int = 96, height: int = 64) -> bytes:
    """A valid RGB PNG (a gradient whose colours follow ``seed``): the stand-in for a screenshot."""
    digest = hashlib.sha256(seed.encode()).digest()
    red, green, blue = digest[0], digest[1], digest[2]
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            rows += bytes(((red + x) % 256, (green + y) % 256, (blue + x + y) % 256))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b"")
