"""Card endpoints: the key set, the revocation list, the verification page, and the member's
"Ganti kartu" action.

The first three are public by design: the JWK set and the revocation list are what any offline
verifier needs; ``/verifikasi`` checks a card in the browser (WebCrypto, keys cached in
``localStorage``) and falls back to a server-side check (POST) without JavaScript.
``/akun/kartu/<id>/ganti/`` is the signed-in member's: a new card for one of their own
memberships, the old one revoked (the button is on the card page, ``card/_card.html``).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_http_methods

from kartu.card import conf, keys, qr

KEYS_MAX_AGE = 300
REVOKED_MAX_AGE = 60

#: Status headlines and reasons as the page shows them (Indonesian source strings).
STATUS_TEXT = {
    qr.VALID: _("Kartu asli dan berlaku"),
    qr.EXPIRED: _("Kartu asli tetapi sudah kedaluwarsa"),
    qr.REVOKED: _("Kartu sudah dicabut"),
    qr.NOT_GENUINE: _("Bukan kartu asli"),
}
REASON_TEXT = {
    "empty": _("Tidak ada teks QR."),
    "too_long": _("Teks QR terlalu panjang."),
    "bad_prefix": _("Teks QR tidak diawali KPJ1:."),
    "bad_base45": _("Teks QR rusak (bukan Base45)."),
    "bad_cbor": _("Isi kode QR rusak."),
    "not_cose": _("Isi kode QR bukan tanda tangan digital yang dikenal."),
    "bad_header": _("Kepala tanda tangan tidak sah."),
    "bad_alg": _("Algoritme tanda tangan tidak diterima."),
    "unknown_kid": _("Ditandatangani dengan kunci yang tidak dikenal."),
    "bad_signature": _("Tanda tangan digital tidak cocok: isi kartu diubah atau dipalsukan."),
    "bad_claims": _("Isi kartu tidak sesuai format."),
    "wrong_issuer": _("Diterbitkan oleh pihak yang tidak dikenal."),
    "future_iat": _("Tanggal terbit kartu ada di masa depan."),
    "expired": _("Masa berlaku kartu sudah habis."),
    "revoked": _("Kartu ini sudah diganti atau dicabut oleh penerbit."),
    "valid": _("Tanda tangan, penerbit, dan masa berlaku sudah diperiksa."),
    "no_qr": _("Tidak ada kode QR yang terbaca."),
}


def _public(response: HttpResponse, max_age: int) -> HttpResponse:
    response["Cache-Control"] = f"public, max-age={max_age}"
    response["Access-Control-Allow-Origin"] = "*"  # any verifier may fetch it
    return response


@require_GET
def keys_json(request: HttpRequest) -> HttpResponse:
    return _public(JsonResponse(keys.jwks()), KEYS_MAX_AGE)


@require_GET
def revoked_json(request: HttpRequest) -> HttpResponse:
    return _public(JsonResponse(keys.revoked_list()), REVOKED_MAX_AGE)


def _page_strings() -> dict[str, Any]:
    return {
        "status": {k: str(v) for k, v in STATUS_TEXT.items()},
        "reason": {k: str(v) for k, v in REASON_TEXT.items()},
        "keysAge": str(_("Kunci verifikasi diperbarui")),
        "noKeys": str(_(
            "Kunci verifikasi belum tersimpan di perangkat ini: buka halaman ini sekali saat "
            "terhubung ke internet."
        )),
        "unverified": str(_("Data di bawah ini TIDAK terbukti asli.")),
        "cameraError": str(_("Kamera tidak dapat dibuka.")),
        "scanning": str(_("Arahkan kamera ke kode QR …")),
    }


def _expiry_date(result: qr.Verification | None) -> date | None:
    """The card's expiry as a local date. The verifier only accepts NumericDates up to year
    9999 UTC, but the last hours of that year are past 9999 in Jakarta: shown as no date then."""
    if result is None or result.card is None:
        return None
    try:
        return timezone.localtime(datetime.fromtimestamp(result.card["exp"], tz=UTC)).date()
    except (OverflowError, ValueError, OSError):
        return None


@require_http_methods(["GET", "POST"])
def verify_page(request: HttpRequest) -> HttpResponse:
    result = None
    text = ""
    if request.method == "POST":
        text = request.POST.get("qr", "")[: qr.MAX_TEXT * 4]
        result = qr.verify(text)
    context = {
        "result": result,
        "status_text": STATUS_TEXT.get(result.status) if result else None,
        "reason_text": REASON_TEXT.get(result.code) if result else None,
        "text": text,
        "card_exp": _expiry_date(result),
        "config": {
            "keysUrl": "/.well-known/kartu/keys.json",
            "revokedUrl": "/.well-known/kartu/revoked.json",
            "issuers": sorted(conf.accepted_issuers()),
            "strings": _page_strings(),
            "sw": "/verifikasi-sw.js",
        },
    }
    response = render(request, "card/verify.html", context)
    response["Cache-Control"] = "no-store" if result else "no-cache"
    return response


@require_GET
@cache_control(no_cache=True)
def service_worker(request: HttpRequest) -> HttpResponse:
    """Keeps ``/verifikasi`` and its script usable offline after one visit."""
    urls = ["/verifikasi", static("card/verify.js"), "/.well-known/kartu/keys.json",
            "/.well-known/kartu/revoked.json",
            static("vendor/jsqr/jsQR.js")]  # the QR reader without BarcodeDetector (verify.js)
    body = render(request, "card/verify-sw.js", {"cache_urls": json.dumps(urls)}).content
    return HttpResponse(body, content_type="text/javascript")
