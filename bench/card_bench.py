"""Digital card: render time (PNG, PDF) and QR signatures / verifications per second.

    .venv/bin/python bench/card_bench.py [--renders 200] [--qr 3000]

One process, SQLite in a throw-away data dir, one member imported with the importer. Measured:

* ``render png id1`` / ``render pdf id1`` / ``render pdf a4``: ``render.render_*`` with the
  card's view built once (``services.card_view``) and the QR already encoded — what a repeat
  download costs. Target: p50 <= 20 ms.
* ``render png, new card``: a fresh card every time (``services.reissue`` + ``card_view`` +
  ``render_png``): signing, storing, encoding the QR (segno's choice of the best of eight mask
  patterns is most of it) and rendering — what the first view of a new card costs.
* ``render png, cold cache``: an issued card whose QR this process has not drawn yet (the mask
  pattern stored at issue is reused; the QR is encoded and rendered again).
* ``qr sign``: ``qr.sign`` (claims -> CBOR -> COSE_Sign1 ES256 via cwt -> Base45).
* ``qr verify (db)``: ``qr.verify`` as the ``/verifikasi`` POST fallback and ``kartu card
  verify`` run it: key from the published set (cached), revocation looked up in the database.
* ``qr verify (memory)``: ``qr.verify`` with the key set and revocation list in memory (what an
  offline verifier does).
* ``qr verify (forged)``: a tampered payload, rejected at the signature.

Prints figures; asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, fmt, log, setup_django, summary_ms, table


def timed(fn: Callable[[], object], n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=200)
    parser.add_argument("--qr", type=int, default=3000)
    args = parser.parse_args()

    setup_django(Path(tempfile.mkdtemp(prefix="kartu-card-bench-")), None)
    from kartu.card import claims, keys, qr, render, services
    from kartu.registry.importer import import_csv, iter_csv_rows
    from kartu.registry.models import Membership

    csv = Path(tempfile.mkdtemp()) / "m.csv"
    with open(csv, "w", encoding="utf-8", newline="") as fh:
        iter_csv_rows([{
            "nik": "3174055708900003", "full_name": "SITI NURHALIZA", "birth_place": "JAKARTA",
            "birth_date": "1990-08-17", "sex": "P", "email": "", "phone": "",
            "kpj": "10987654321", "employer": "PT SINAR ABADI", "status": "aktif",
            "registered_on": "2015-03-01",
        }], fh)
    import_csv(csv, progress=False)
    membership = Membership.objects.select_related("person").get(kpj="10987654321")
    card = services.current_card(membership)
    view = services.card_view(card)
    text = services.qr_text(card)
    log(f"QR: {len(text)} characters, version {qr.make_qr(text).version}")

    rows = []
    n = args.renders
    results: dict[str, list[float]] = {
        "render png id1": timed(lambda: render.render_png(card, "id1", view=view), n),
        "render pdf id1": timed(lambda: render.render_pdf(card, "id1", view=view), n),
        "render pdf a4": timed(lambda: render.render_pdf(card, "a4", view=view), n),
        # a card issued earlier, rendered in a process that has not drawn its QR yet: the mask
        # pattern chosen at issue is stored on the card, so the choice is not made again
        "render png, cold cache": timed(lambda: (qr.make_qr.cache_clear(), render.render_png(
            card, "id1", view=services.card_view(card))), n),
        "render png, new card": timed(lambda: render.render_png(
            c := services.reissue(membership), view=services.card_view(c)), max(20, n // 4)),
    }
    for name, secs in results.items():
        s = summary_ms(secs)
        rows.append([name, s["n"], fmt(s["p50"], 1), fmt(s["p90"], 1), fmt(s["p99"], 1),
                     fmt(1000 / s["mean"], 0), "yes" if s["p50"] <= 20 else "no"])
    sizes = {"png id1": len(render.render_png(card, view=view)),
             "pdf id1": len(render.render_pdf(card, "id1", view=view)),
             "pdf a4": len(render.render_pdf(card, "a4", view=view))}

    signer = keys.active_signer()
    data = claims.card_data(membership)
    now = int(time.time())
    q = args.qr
    keyset = keys.keyset_from_jwks(keys.jwks())
    live = services.current_card(membership)
    live_text = services.qr_text(live)
    forged = live_text[:-4] + ("AAAA" if not live_text.endswith("AAAA") else "BBBB")
    assert qr.verify(live_text).valid
    qr_results = {
        "qr sign": timed(lambda: qr.sign(data, signer, iss="https://x", iat=now,
                                         exp=now + 86400, cti=os.urandom(16)), q),
        "qr verify (db)": timed(lambda: qr.verify(live_text), q),
        "qr verify (memory)": timed(lambda: qr.verify(live_text, key_lookup=keyset.get,
                                                      is_revoked=frozenset().__contains__), q),
        "qr verify (forged)": timed(lambda: qr.verify(forged), q),
    }
    for name, secs in qr_results.items():
        s = summary_ms(secs)
        rows.append([name, s["n"], fmt(s["p50"], 3), fmt(s["p90"], 3), fmt(s["p99"], 3),
                     fmt(len(secs) / sum(secs), 0), ""])

    print(environment())
    import typst

    print(f"typst-py {getattr(typst, '__version__', '?')}, PNG {render.PNG_PPI} ppi; "
          f"QR {len(text)} chars, version {qr.make_qr(text).version}; "
          f"output sizes: {', '.join(f'{k} {v / 1024:.0f} KiB' for k, v in sizes.items())}")
    print(table(["case", "n", "p50 ms", "p90 ms", "p99 ms", "per s", "p50<=20ms"], rows))


if __name__ == "__main__":
    main()
