"""Accuracy and speed of the message extractor (kartu.desk.extract).

    .venv/bin/python bench/extract.py [--samples PATH] [--examples PATH] [--seconds 2] [--show]

Prints field accuracy on the 40 labelled samples (held out: the rules were
not fitted to them) and on our own labelled examples, then messages/second
on one core (all messages, looped for at least ``--seconds`` of CPU time; the
wall-clock rate is printed too, it is lower when the machine is busy).  Needs no
Django settings and no database.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kartu.desk.extract import FIELDS, extract  # noqa: E402

DATA = ROOT / "kartu" / "desk" / "extract" / "tests"


def default_samples() -> Path:
    shared = ROOT.parent / "shared" / "samples" / "messages.jsonl"
    return shared if shared.exists() else DATA / "samples.jsonl"


def load(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def accuracy(records: list[dict], show: bool) -> tuple[float, dict[str, float], list[str]]:
    right = dict.fromkeys(FIELDS, 0)
    wrong: list[str] = []
    for rec in records:
        got = extract(rec["text"], rec.get("subject")).as_dict()
        for field in FIELDS:
            if got[field] == rec["expected"][field]:
                right[field] += 1
            else:
                wrong.append(
                    f"{rec['id']}.{field}: got {got[field]!r}, expected {rec['expected'][field]!r}"
                )
    n = len(records) or 1
    per = {f: right[f] / n for f in FIELDS}
    overall = sum(right.values()) / (n * len(FIELDS))
    if show:
        for line in wrong:
            print("   ", line)
    return overall, per, wrong


def speed(records: list[dict], seconds: float) -> tuple[float, float, int]:
    """Messages per CPU second and per wall-clock second (single thread)."""
    msgs = [(r["text"], r.get("subject")) for r in records]
    for text, subject in msgs:  # warm-up (regex compilation, caches)
        extract(text, subject)
    done = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while True:
        for text, subject in msgs:
            extract(text, subject)
        done += len(msgs)
        cpu = time.process_time() - cpu0
        if cpu >= seconds:
            return done / cpu, done / (time.perf_counter() - wall0), done


def report(name: str, records: list[dict], show: bool) -> None:
    overall, per, wrong = accuracy(records, show)
    fields = "  ".join(f"{f} {per[f]:.1%}" for f in FIELDS)
    print(f"{name:<22} {len(records):>4} messages  overall {overall:.1%}  |  {fields}")
    if wrong and not show:
        print(f"{'':<22} wrong: {', '.join(w.split(':')[0] for w in wrong)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=default_samples())
    parser.add_argument("--examples", type=Path, default=DATA / "examples.jsonl")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--show", action="store_true", help="print every wrong field")
    args = parser.parse_args()

    samples = load(args.samples)
    examples = load(args.examples)
    print(f"samples:  {args.samples}")
    print(f"examples: {args.examples}")
    report("samples (held out)", samples, args.show)
    report("own examples", examples, args.show)
    cpu_rate, wall_rate, done = speed(samples + examples, args.seconds)
    print(
        f"speed: {cpu_rate:,.0f} messages per CPU-second on one core "
        f"({wall_rate:,.0f}/s wall clock, {done:,} messages)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
