"""The browser verifier (static/card/verify.js) agrees with qr.verify, run under Node's WebCrypto.

Skipped when ``node`` (>= 20) is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import base45
import cbor2
import pytest
from django.utils import timezone

from kartu.card import claims, keys, qr, services

pytestmark = pytest.mark.django_db
VERIFY_JS = Path(__file__).resolve().parents[2] / "static" / "card" / "verify.js"

RUNNER = r"""
const fs = require("fs"), vm = require("vm");
vm.runInThisContext(fs.readFileSync(process.argv[process.argv.length - 1], "utf8"));
const input = JSON.parse(fs.readFileSync(0, "utf8"));
(async () => {
  const out = [];
  for (const c of input.cases) {
    const r = await KartuVerify.verify(c.text, {jwks: input.jwks, revoked: input.revoked,
                                               issuers: input.issuers, now: c.now});
    out.push({status: r.status, code: r.code, card: r.card});
  }
  console.log(JSON.stringify(out));
})();
"""


def _node() -> str:
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed: the browser verifier is not exercised")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    if int(version.stdout.strip().lstrip("v").split(".")[0]) < 20:
        pytest.skip("node < 20 has no global WebCrypto")
    return node


def _run_js(node: str, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    doc = {"cases": cases, "jwks": keys.jwks(), "revoked": keys.revoked_list(),
           "issuers": sorted({"http://127.0.0.1:8000"})}
    proc = subprocess.run([node, "-e", RUNNER, "--", str(VERIFY_JS)], input=json.dumps(doc),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


def test_js_and_python_agree(membership, card, qr_text, other_signer):  # type: ignore[no-untyped-def]
    node = _node()
    tag = cbor2.loads(base45.b45decode(qr_text[5:]))
    protected, unprotected, payload, signature = tag.value

    def enc(parts: list) -> str:  # type: ignore[type-arg]
        return "KPJ1:" + base45.b45encode(cbor2.dumps(cbor2.CBORTag(18, parts))).decode()

    body = cbor2.loads(payload)
    body[-70001]["n"] = "SOMEONE ELSE"
    forged_kid = cbor2.dumps({1: -7, 4: other_signer.kid})
    exp = int(card.expires_at.timestamp())
    revoked_card = services.reissue(membership)  # revokes `card`, so use the new one for valid
    valid_text = services.qr_text(revoked_card)
    cases = [
        {"text": valid_text, "now": None},
        {"text": valid_text, "now": int(revoked_card.expires_at.timestamp())},
        {"text": qr_text, "now": None},  # revoked
        {"text": qr_text, "now": exp + 10},  # expired (before revoked, as in Python)
        {"text": enc([protected, unprotected, cbor2.dumps(body), signature]), "now": None},
        {"text": enc([forged_kid, {}, payload, signature]), "now": None},
        {"text": enc([cbor2.dumps({1: -35, 4: tag.value[0][-8:]}), {}, payload, signature]),
         "now": None},
        {"text": enc([protected, {4: b"x"}, payload, signature]), "now": None},
        {"text": qr_text[:-2], "now": None},
        {"text": "KPJ1:" + base45.b45encode(b"\x00\x01").decode(), "now": None},
        {"text": "HC1:" + qr_text[5:], "now": None},
        {"text": "KPJ1:" + "A" * 2000, "now": None},
        {"text": "KPJ1:abc", "now": None},
    ]
    got = _run_js(node, cases)
    for case, js in zip(cases, got, strict=True):
        py = qr.verify(case["text"], now=case["now"])
        assert (js["status"], js["code"]) == (py.status, py.code), case["text"][:40]
        if py.status != "not_genuine":
            assert js["card"] == py.card
    assert got[0]["status"] == "valid" and got[2]["status"] == "revoked"
    assert got[3]["status"] == "expired" and got[4]["code"] == "bad_signature"


def test_a_slow_clock_may_lag_iat_by_300_seconds_but_exp_is_strict(membership):  # type: ignore[no-untyped-def]
    """A card issued a moment ago, checked on a phone whose clock is slow, is still valid.

    Both verifiers allow 300 s between the card's ``iat`` and a verifier's clock that lags the
    issuer's; a larger gap is a forged date (``future_iat``), and ``exp`` has no leeway at all.
    """
    node = _node()
    now = timezone.now()

    def issued_ahead(seconds: int) -> str:
        """A card whose iat is ``seconds`` ahead of this machine's clock (the issuer's is ahead)."""
        return services.qr_text(services.issue_card(membership,
                                                    now=now + timedelta(seconds=seconds)))

    ahead_100, ahead_1000 = issued_ahead(100), issued_ahead(1000)
    card = services.issue_card(membership, now=now)
    text = services.qr_text(card)
    iat, exp = int(card.issued_at.timestamp()), int(card.expires_at.timestamp())
    cases: list[dict[str, Any]] = [
        {"text": ahead_100, "now": None},  # the device clock (now) is 100 s behind the issuer's
        {"text": ahead_1000, "now": None},
        {"text": text, "now": iat - 300},
        {"text": text, "now": iat - 301},
        {"text": text, "now": exp - 1},
        {"text": text, "now": exp},
    ]
    expected = [("valid", "valid"), ("not_genuine", "future_iat"), ("valid", "valid"),
                ("not_genuine", "future_iat"), ("valid", "valid"), ("expired", "expired")]
    got = _run_js(node, cases)
    for case, js, want in zip(cases, got, expected, strict=True):
        py = qr.verify(case["text"], now=case["now"])
        assert (js["status"], js["code"]) == (py.status, py.code) == want, case["now"]


def test_dates_past_the_year_9999_are_refused_by_both(membership):  # type: ignore[no-untyped-def]
    """qr.py refuses NumericDates it cannot show as a date (> 9999-12-31T23:59:59Z): so does JS."""
    node = _node()
    data = claims.card_data(membership)

    def signed(exp: int) -> str:
        return qr.sign(data, keys.active_signer(), iss="http://127.0.0.1:8000", iat=1_700_000_000,
                       exp=exp, cti=os.urandom(16))

    cases: list[dict[str, Any]] = [{"text": signed(qr.MAX_NUMERIC_DATE), "now": 1_700_000_000},
                                   {"text": signed(qr.MAX_NUMERIC_DATE + 1), "now": 1_700_000_000}]
    got = _run_js(node, cases)
    for case, js, want in zip(cases, got, [("valid", "valid"), ("not_genuine", "bad_claims")],
                              strict=True):
        py = qr.verify(case["text"], now=case["now"])
        assert (js["status"], js["code"]) == (py.status, py.code) == want
