"""``kartu card verify|issue`` — check a card's QR, or issue a card file for a member.

``kartu card verify [TEXT | FILE] [--png FILE]`` reads the QR text (``KPJ1:…``) from the argument
or, without one, from standard input; a PNG (or other image) of the card, given as ``--png``, as
a file argument or on standard input, is read with zxing-cpp. It prints one JSON object and exits
0 whatever the verdict::

    {"valid": bool, "status": "valid"|"expired"|"revoked"|"not_genuine", "reason": "…",
     "card": {"kpj", "n", "dob", "nik4", "iss", "iat", "exp", "cti"} | null}

``kartu card issue --kpj N --format png|pdf|qr --out FILE`` writes the member's current card
(issued or re-issued as needed; ``--reissue`` revokes it and issues a new one). ``--out -``
writes to standard output.
"""

from __future__ import annotations

import io
import json
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from kartu.card import qr

MAX_INPUT = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_IMAGE_MAGIC = (PNG_MAGIC, b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF")


def _not_genuine(reason: str) -> dict[str, Any]:
    return {"valid": False, "status": qr.NOT_GENUINE, "reason": reason, "card": None}


def read_qr_from_image(data: bytes) -> str | None:
    """The text of the QR in an image (preferring one that starts with KPJ1:), or None."""
    import zxingcpp
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        gray = img.convert("L")
    found = zxingcpp.read_barcodes(gray, formats=zxingcpp.barcode_formats_from_str("QRCode"))
    texts = [b.text for b in found]
    for text in texts:
        if text.startswith(qr.PREFIX):
            return text
    return texts[0] if texts else None


def _is_file(name: str) -> bool:
    """Whether the argument names a file. Text that cannot be a file name (too long for the
    system, ENAMETOOLONG, or otherwise refused by it) is not one: it is verified as QR text."""
    try:
        return Path(name).is_file()
    except (OSError, ValueError):
        return False


def verify_input(data: bytes | str, **checks: Any) -> dict[str, Any]:
    """Verify QR text or an image of a card; the JSON-ready result. ``checks`` go to
    :func:`kartu.card.qr.verify` (``key_lookup``, ``is_revoked``)."""
    if isinstance(data, bytes) and data.startswith(_IMAGE_MAGIC):
        try:
            text = read_qr_from_image(data)
        except Exception:  # Pillow and zxing raise many kinds on a broken or hostile image
            return _not_genuine("the image could not be read")
        if text is None:
            return _not_genuine("no QR code found in the image")
        data = text
    return qr.verify(data, **checks).as_dict()


class Command(BaseCommand):
    help = "Verify a card's QR (text or image), or issue a card file for a member."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        ver = sub.add_parser("verify", help="check a KPJ1: QR text or a PNG of a card")
        ver.add_argument("text", nargs="?", help="the QR text or an image file; default: stdin")
        ver.add_argument("--png", metavar="FILE", help="a PNG (or other image) of the card")
        ver.add_argument("--keys", metavar="FILE",
                         help="verify with this JWK set (keys.json) instead of the database")
        ver.add_argument("--revoked", metavar="FILE",
                         help="with --keys: the revocation list (revoked.json) to apply")
        iss = sub.add_parser("issue", help="write a member's card as PNG, PDF or QR text")
        iss.add_argument("--kpj", required=True, help="the membership's 11-digit KPJ number")
        iss.add_argument("--format", choices=["png", "pdf", "qr"], default="pdf")
        iss.add_argument("--size", choices=["a4", "id1"], default=None,
                         help="PDF: a4 (default) or id1; PNG: id1 (default) or a4")
        iss.add_argument("--out", required=True, help="output file, or - for standard output")
        iss.add_argument("--reissue", action="store_true",
                         help="revoke the current card and issue a new one")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "verify":
            result = self._verify(opts)
            self.stdout.write(json.dumps(result, ensure_ascii=False))
        else:
            self._issue(opts)

    def _read_file(self, name: str) -> bytes:
        path = Path(name)
        try:
            if path.stat().st_size > MAX_INPUT:
                raise CommandError(f"{name} is larger than {MAX_INPUT} bytes")
            return path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {name}: {exc.strerror}") from None

    def _checks(self, opts: dict[str, Any]) -> dict[str, Any]:
        if not opts["keys"]:
            if opts["revoked"]:
                raise CommandError("--revoked goes with --keys")
            return {}
        from kartu.card.keys import keyset_from_jwks

        try:
            keyset = keyset_from_jwks(json.loads(self._read_file(opts["keys"])))
        except ValueError as exc:
            raise CommandError(f"--keys: {opts['keys']} is not a JSON document ({exc})") from None
        revoked: frozenset[str] = frozenset()
        if opts["revoked"]:
            revoked = self._revoked(opts["revoked"])
        return {"key_lookup": keyset.get, "is_revoked": revoked.__contains__}

    def _revoked(self, name: str) -> frozenset[str]:
        """The card ids of a ``revoked.json`` (``{"revoked": [cti, …]}``). Anything else is an
        error, not an empty list: a verifier that silently ignored its revocation list would
        call revoked cards valid."""
        try:
            doc = json.loads(self._read_file(name))
        except ValueError as exc:
            raise CommandError(f"--revoked: {name} is not a JSON document ({exc})") from None
        entries = doc.get("revoked") if isinstance(doc, dict) else None
        if not (isinstance(entries, list) and all(isinstance(c, str) for c in entries)):
            raise CommandError(
                f'--revoked: {name} is not a revocation list ({{"revoked": [card id, …]}} '
                "with every card id a string)"
            )
        return frozenset(entries)

    def _verify(self, opts: dict[str, Any]) -> dict[str, Any]:
        checks = self._checks(opts)
        if opts["png"]:
            return verify_input(self._read_file(opts["png"]), **checks)
        text = opts["text"]
        if text is None:
            stream = getattr(sys.stdin, "buffer", None)
            data = stream.read(MAX_INPUT) if stream is not None else sys.stdin.read(MAX_INPUT)
            return verify_input(data, **checks)
        if not text.strip().startswith(qr.PREFIX) and len(text) < 4096 and _is_file(text):
            return verify_input(self._read_file(text), **checks)
        return verify_input(text, **checks)

    def _issue(self, opts: dict[str, Any]) -> None:
        from kartu.card import render, services
        from kartu.registry.models import Membership

        try:
            membership = Membership.objects.select_related("person").get(kpj=opts["kpj"])
        except Membership.DoesNotExist:
            raise CommandError("no membership with that KPJ number") from None
        if opts["reissue"]:
            card = services.reissue(membership)
        else:
            card = services.current_card(membership)
        fmt = opts["format"]
        if fmt == "qr":
            data = (services.qr_text(card) + "\n").encode()
        elif fmt == "png":
            data = render.render_png(card, opts["size"] or "id1")
        else:
            data = render.render_pdf(card, opts["size"] or "a4")
        if opts["out"] == "-":
            out = getattr(self.stdout, "_out", sys.stdout)
            buffer = getattr(out, "buffer", None)
            if buffer is not None:
                buffer.write(data)
                buffer.flush()
            else:
                out.write(data.decode("latin-1"))
        else:
            Path(opts["out"]).write_bytes(data)
            self.stderr.write(f"card {card.cti} ({fmt}) written to {opts['out']}")
