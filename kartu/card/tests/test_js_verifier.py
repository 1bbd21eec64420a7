"""The browser verifier (static/card/verify.js) agrees with qr.verify, case by case.

verify.js runs under Node's WebCrypto when ``node`` >= 20 is installed (fast), else in headless
Chromium, on a page served (by Playwright, from the file on disk) at http://127.0.0.1 so that it
is a secure context with ``crypto.subtle``. ``KARTU_JS_RUNNER=node`` or ``=chromium`` forces
one of them. With neither available the tests skip (with the reason) outside CI and fail in CI,
where browser-side checks must run: Debian 12's nodejs is 18, so CI uses its Chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import base45
import cbor2
import pytest
from django.utils import timezone

from conftest import find_chromium
from kartu.card import claims, keys, qr, services

pytestmark = pytest.mark.django_db
VERIFY_JS = Path(__file__).resolve().parents[2] / "static" / "card" / "verify.js"
RUNNERS = ("node", "chromium")
ORIGIN = "http://127.0.0.1"  # a secure context, like localhost; never reached (see _serve)
PAGE = '<!doctype html><meta charset="utf-8"><script src="/verify.js"></script>'

# The one piece of JS both runners evaluate, after verify.js has defined KartuVerify: it
# returns JSON text so that both hand back exactly what JSON.stringify makes of the results.
VERIFY_CASES = r"""
async (input) => {
  const out = [];
  for (const c of input.cases) {
    const r = await KartuVerify.verify(c.text, {jwks: input.jwks, revoked: input.revoked,
                                               issuers: input.issuers, now: c.now});
    out.push({status: r.status, code: r.code, card: r.card});
  }
  return JSON.stringify(out);
}
"""

NODE_RUNNER = r"""
const fs = require("fs"), vm = require("vm");
vm.runInThisContext(fs.readFileSync(process.argv[process.argv.length - 1], "utf8"));
const input = JSON.parse(fs.readFileSync(0, "utf8"));
""" + f"({VERIFY_CASES.strip()})(input).then((text) => console.log(text));\n"

RunJs = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def _node_major() -> int | None:
    """The major version of the ``node`` on PATH, or None when there is none."""
    node = shutil.which("node")
    if not node:
        return None
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    try:
        return int(version.stdout.strip().lstrip("v").split(".")[0])
    except ValueError:
        return None


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: the browser verifier must be exercised in CI")
    pytest.skip(f"{reason}: the browser verifier is not exercised")


def _choose_runner(forced: str, node_major: int | None, chromium: str | None) -> str:
    """Node >= 20 if present (it has global WebCrypto), else Chromium; ``forced`` picks one."""
    if forced not in ("", *RUNNERS):
        pytest.fail(f"KARTU_JS_RUNNER={forced!r}: expected one of {', '.join(RUNNERS)}")
    node_ok = node_major is not None and node_major >= 20
    node_state = f"node {node_major} (< 20, no global WebCrypto)" if node_major else "no node"
    if forced == "node" or (not forced and node_ok):
        if not node_ok:
            _unavailable(f"KARTU_JS_RUNNER=node but there is {node_state}")
        return "node"
    if not chromium:
        prefix = "KARTU_JS_RUNNER=chromium but" if forced else f"{node_state} and"
        _unavailable(f"{prefix} no Chromium (apt-get install chromium, or set KARTU_CHROMIUM)")
    return "chromium"


def _document(cases: list[dict[str, Any]]) -> dict[str, Any]:
    return {"cases": cases, "jwks": keys.jwks(), "revoked": keys.revoked_list(),
            "issuers": sorted({"http://127.0.0.1:8000"})}


def _run_in_node(node: str, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    proc = subprocess.run([node, "-e", NODE_RUNNER, "--", str(VERIFY_JS)],
                          input=json.dumps(_document(cases)), capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


def _serve(route: Any) -> None:
    """The test page and verify.js as it is on disk, answered by Playwright without a server."""
    if urlsplit(route.request.url).path == "/verify.js":
        route.fulfill(path=VERIFY_JS, content_type="text/javascript; charset=utf-8")
    else:
        route.fulfill(body=PAGE, content_type="text/html; charset=utf-8")


def _run_in_page(page: Any, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    page.goto(f"{ORIGIN}/")  # a fresh page per run, as node is a fresh process per run
    assert page.evaluate("isSecureContext && !!crypto.subtle"), "no WebCrypto on the test page"
    result: list[dict[str, Any]] = json.loads(page.evaluate(VERIFY_CASES, _document(cases)))
    return result


@pytest.fixture(scope="module")
def run_js(request: pytest.FixtureRequest) -> Iterator[RunJs]:
    """Runs verify.js on a list of cases in the chosen runner; one browser page per module."""
    runner = _choose_runner(os.environ.get("KARTU_JS_RUNNER", ""), _node_major(), find_chromium())
    if runner == "node":
        node = shutil.which("node") or "node"
        yield lambda cases: _run_in_node(node, cases)
        return
    context = request.getfixturevalue("browser").new_context()
    context.set_default_timeout(20_000)
    context.route(f"{ORIGIN}/**", _serve)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def run(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result = _run_in_page(page, cases)
        assert not errors, errors
        return result

    try:
        yield run
    finally:
        context.close()


@pytest.mark.parametrize(("forced", "node_major", "chromium", "expected"), [
    ("", 20, "/usr/bin/chromium", "node"),
    ("", 22, None, "node"),
    ("", 18, "/usr/bin/chromium", "chromium"),
    ("", None, "/usr/bin/chromium", "chromium"),
    ("chromium", 22, "/usr/bin/chromium", "chromium"),
    ("node", 20, None, "node"),
])
def test_node_20_is_preferred_then_chromium(forced, node_major, chromium, expected):  # type: ignore[no-untyped-def]
    assert _choose_runner(forced, node_major, chromium) == expected


@pytest.mark.parametrize(("forced", "node_major", "chromium"), [
    ("", 18, None), ("", None, None), ("node", 18, "/usr/bin/chromium"), ("chromium", 22, None),
])
def test_no_runner_skips_outside_ci_and_fails_in_ci(monkeypatch, forced, node_major,
                                                    chromium):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not exercised"):
        _choose_runner(forced, node_major, chromium)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must be exercised in CI"):
        _choose_runner(forced, node_major, chromium)


def test_js_and_python_agree(run_js, membership, card, qr_text, other_signer):  # type: ignore[no-untyped-def]
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
    got = run_js(cases)
    for case, js in zip(cases, got, strict=True):
        py = qr.verify(case["text"], now=case["now"])
        assert (js["status"], js["code"]) == (py.status, py.code), case["text"][:40]
        if py.status != "not_genuine":
            assert js["card"] == py.card
    assert got[0]["status"] == "valid" and got[2]["status"] == "revoked"
    assert got[3]["status"] == "expired" and got[4]["code"] == "bad_signature"


def test_a_slow_clock_may_lag_iat_by_300_seconds_but_exp_is_strict(run_js, membership):  # type: ignore[no-untyped-def]
    """A card issued a moment ago, checked on a phone whose clock is slow, is still valid.

    Both verifiers allow 300 s between the card's ``iat`` and a verifier's clock that lags the
    issuer's; a larger gap is a forged date (``future_iat``), and ``exp`` has no leeway at all.
    """
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
    got = run_js(cases)
    for case, js, want in zip(cases, got, expected, strict=True):
        py = qr.verify(case["text"], now=case["now"])
        assert (js["status"], js["code"]) == (py.status, py.code) == want, case["now"]


def test_dates_past_the_year_9999_are_refused_by_both(run_js, membership):  # type: ignore[no-untyped-def]
    """qr.py refuses NumericDates it cannot show as a date (> 9999-12-31T23:59:59Z): so does JS."""
    data = claims.card_data(membership)

    def signed(exp: int) -> str:
        return qr.sign(data, keys.active_signer(), iss="http://127.0.0.1:8000", iat=1_700_000_000,
                       exp=exp, cti=os.urandom(16))

    cases: list[dict[str, Any]] = [
        {"text": signed(exp), "now": 1_700_000_000}
        for exp in (qr.MAX_NUMERIC_DATE, qr.MAX_NUMERIC_DATE + 1, 2**53 - 1, 2**53 + 2, 2**60)
    ]
    got = run_js(cases)
    # Beyond 2**53 JavaScript cannot hold the integer: both refuse it while decoding.
    wants = [("valid", "valid"), ("not_genuine", "bad_claims"), ("not_genuine", "bad_claims"),
             ("not_genuine", "bad_cbor"), ("not_genuine", "bad_cbor")]
    for case, js, want in zip(cases, got, wants, strict=True):
        py = qr.verify(case["text"], now=case["now"])
        assert (js["status"], js["code"]) == (py.status, py.code) == want
