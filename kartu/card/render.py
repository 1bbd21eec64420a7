"""The card as PNG and PDF, from one Typst template (``card.typ``) through the ``typst`` package.

No system libraries are needed: Typst is compiled into the wheel, the fonts (DejaVu Sans, in
``static/card/fonts``, plus Typst's embedded DejaVu Sans Mono) ship with kartu, and the QR comes
from segno as an SVG. Two sizes: ``id1`` (the card itself, 85.60 × 53.98 mm, ISO/IEC 7810 ID-1)
and ``a4`` (the card at true size on an A4 page with a cut line and printing advice).

One :class:`typst.Compiler` per process keeps the parsed template and fonts, so a render costs
about 10-20 ms (see ``bench/card_bench.py``). The QR's width is a whole number of PNG pixels per
module at :data:`PNG_PPI`, so the PNG's modules are sharp.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import typst
from django.conf import settings
from django.utils import formats
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from kartu.card import conf, qr
from kartu.card.models import Card
from kartu.card.services import CardView, card_view

Size = Literal["a4", "id1"]
TEMPLATE = Path(__file__).with_name("card.typ")
FONTS = Path(__file__).resolve().parent.parent / "static" / "card" / "fonts"
PNG_PPI = 300
MM_PER_PX = 25.4 / PNG_PPI
QR_MAX_MM = 33.0
EMPLOYER_MAX = 40  # characters; the printed card has room for two short lines

_lock = threading.Lock()
_compiler: typst.Compiler | None = None


def _get_compiler() -> typst.Compiler:
    global _compiler
    if _compiler is None:
        _compiler = typst.Compiler(
            str(TEMPLATE), root=str(TEMPLATE.parent), font_paths=[str(FONTS)],
            ignore_system_fonts=True,
        )
    return _compiler


def qr_width_mm(text: str) -> float:
    """Width of the QR (quiet zone included): whole pixels per module at PNG_PPI, at most
    QR_MAX_MM."""
    modules = qr.make_qr(text).symbol_size(border=4)[0]
    px_per_module = max(2, int(QR_MAX_MM / (modules * MM_PER_PX)))
    return round(modules * px_per_module * MM_PER_PX, 4)


def qr_svg(card: Card) -> str:
    """The card's QR as an SVG document (viewBox only; size it with CSS)."""
    from kartu.card.services import qr_text

    return qr.svg(qr_text(card), responsive=True)


def inputs(view: CardView, size: Size = "id1") -> dict[str, str]:
    """The template's ``sys.inputs`` for ``view`` (labels in the active language)."""
    return {
        "size": size,
        "lang": (get_language() or settings.LANGUAGE_CODE).split("-")[0],
        "title": _("KARTU PESERTA"),
        "agency": conf.agency(),
        "name": view.name,
        "nik": view.nik_masked,
        "kpj": view.kpj,
        "status": view.status_label,
        "active": "1" if view.active else "0",
        "programmes": " · ".join(view.programmes) or "-",
        "employer": _shorten(view.employer, EMPLOYER_MAX),
        "valid": formats.date_format(view.valid_until, "SHORT_DATE_FORMAT"),
        "verify_url": f"{conf.issuer().split('://', 1)[-1]}/verifikasi",
        "qr": qr.svg(view.qr_text),
        "qr_mm": str(qr_width_mm(view.qr_text)),
        "l_name": _("Nama"),
        "l_nik": _("NIK"),
        "l_kpj": _("Nomor KPJ"),
        "l_programmes": _("Program"),
        "l_employer": _("Pemberi kerja"),
        "l_valid": _("Berlaku s.d."),
        "l_verify": _("Periksa keaslian:"),
        "a4_note": _(
            "Cetak dengan skala 100% (ukuran sebenarnya) lalu gunting sepanjang garis putus-"
            "putus. Kode QR ini ditandatangani secara digital: siapa pun dapat memeriksa "
            "keaslian kartu di halaman verifikasi, juga tanpa koneksi internet."
        ),
    }


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _compile(view: CardView, fmt: Literal["png", "pdf"], size: Size) -> bytes:
    if size not in ("a4", "id1"):
        raise ValueError(f"size must be 'a4' or 'id1', not {size!r}")
    sys_inputs = inputs(view, size)
    with _lock:  # one compiler per process; typst's caches are not shared across threads
        out = _get_compiler().compile(
            format=fmt, ppi=PNG_PPI if fmt == "png" else None, sys_inputs=sys_inputs,
            timestamp=int(view.card.issued_at.timestamp()),
        )
    if isinstance(out, list):  # a multi-page PNG comes back as one image per page
        out = out[0]
    assert isinstance(out, bytes)
    return out


def render_png(card: Card, size: Size = "id1", *, view: CardView | None = None) -> bytes:
    """The card as a PNG at 300 ppi (``id1``: 1011 × 638 px)."""
    return _compile(view or card_view(card), "png", size)


def render_pdf(card: Card, size: Size = "a4", *, view: CardView | None = None) -> bytes:
    """The card as a PDF: ``a4`` (true size on an A4 page, to print and cut) or ``id1``."""
    return _compile(view or card_view(card), "pdf", size)
