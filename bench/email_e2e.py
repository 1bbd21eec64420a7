"""Email end to end: N members write to the care address over SMTP; how fast do answers come?

    .venv/bin/python bench/email_e2e.py [--n 200] [--workers 1] [--inline] [--concurrency 8]
                                        [--timeout 300] [--keep]

A fresh temporary data directory (SQLite) gets ``--n`` demo people (``kartu.registry.demo``)
through the importer. In this process: an SMTP sink (stands in for the agency's outbound MTA;
``KARTU_SMTP_URL`` points at it) and kartu's SMTP listener (``kartu.channels.email.listener``,
the code ``kartu smtp`` runs). Then every person sends one plain-text request with their real
name, place and date of birth and NIK, from their own address, over a new SMTP connection each
(``--concurrency`` senders at once). Processing takes the real path:

* default: ``--workers`` ``kartu worker`` subprocesses with the database task backend — the
  listener stores and enqueues, a worker runs the bot and delivers the reply through Django's
  SMTP backend to the sink;
* ``--inline``: the ImmediateBackend — the listener's worker thread runs the bot and delivers
  before it answers 250 (no queue).

Prints messages/s (replies received / time from the first send to the last reply), the answer
time (send start → reply at the sink) p50/p99, the SMTP acceptance time (send start → 250) and
how many replies carried the right KPJ. Bounded: gives up after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

CARE = "care@kartu.localhost"
_IN_REPLY_TO = re.compile(rb"^In-Reply-To:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


class Sink:
    """Collects replies: In-Reply-To → (arrival time, raw bytes)."""

    def __init__(self) -> None:
        self.replies: dict[str, tuple[float, bytes]] = {}
        self.other = 0
        self.lock = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.perf_counter()
        raw = bytes(envelope.original_content)
        head = raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ")
        found = _IN_REPLY_TO.search(head)
        with self.lock:
            if found:
                self.replies.setdefault(found.group(1).decode(), (now, raw))
            else:
                self.other += 1
            self.lock.notify_all()
        return "250 OK"

    def wait(self, count: int, deadline: float) -> int:
        with self.lock:
            while len(self.replies) < count and time.monotonic() < deadline:
                self.lock.wait(min(1.0, max(0.01, deadline - time.monotonic())))
            return len(self.replies)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def request(person: dict[str, Any], i: int, run: str) -> tuple[str, str, bytes]:
    sender = f"member{i}.{run}@bench.example"
    message_id = f"<bench-{run}-{i}@bench.example>"
    y, m, d = str(person["birth_date"]).split("-")
    msg = EmailMessage()
    msg["From"] = f"{str(person['full_name']).title()} <{sender}>"
    msg["To"] = CARE
    msg["Subject"] = "Permohonan nomor KPJ"
    msg["Message-ID"] = message_id
    msg["Date"] = time.strftime("%a, %d %b %Y %H:%M:%S +0700")
    msg.set_content(
        "Selamat pagi,\n\nSaya lupa nomor KPJ saya. Data saya:\n"
        f"Nama lengkap: {str(person['full_name']).title()}\n"
        f"Tempat, tanggal lahir: {str(person['birth_place']).title()}, {d}-{m}-{y}\n"
        f"NIK: {person['nik']}\n\nTerima kasih.\n"
    )
    return sender, message_id, msg.as_bytes(policy=SMTP_POLICY)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="emails (= demo people), default 200")
    ap.add_argument("--workers", type=int, default=1, help="`kartu worker` processes")
    ap.add_argument("--inline", action="store_true",
                    help="process in the listener (ImmediateBackend) instead of workers")
    ap.add_argument("--concurrency", type=int, default=8, help="concurrent SMTP senders")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds before giving up")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = ap.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="kartu-email-bench-"))
    sink_port = free_port()
    os.environ.update({
        "KARTU_CARE_ADDRESS": CARE,
        "KARTU_SMTP_URL": f"smtp://127.0.0.1:{sink_port}",
        "KARTU_DISCLOSURE_POLICY": "direct",
        "KARTU_LOG_LEVEL": os.environ.get("KARTU_LOG_LEVEL", "WARNING"),
    })
    if args.inline:
        os.environ["KARTU_TASKS_BACKEND"] = "django_tasks.backends.immediate.ImmediateBackend"
    else:
        os.environ.pop("KARTU_TASKS_BACKEND", None)
    workers: list[subprocess.Popen[bytes]] = []
    listener = sink_controller = None
    try:
        started = time.perf_counter()
        c.setup_django(data_dir, None)
        from aiosmtpd.controller import Controller

        from kartu.channels.email import listener as smtp_listener
        from kartu.registry import demo
        from kartu.registry.importer import import_csv

        csv_path = data_dir / "demo.csv"
        demo.write_csv_file(csv_path, args.n)
        summary = import_csv(csv_path, progress=False)
        people = demo.sample_identities(args.n)
        c.log(f"data dir {data_dir}: {len(people)} people, {summary.rows} rows imported in "
              f"{time.perf_counter() - started:.1f} s")

        sink = Sink()
        sink_controller = Controller(sink, hostname="127.0.0.1", port=sink_port,
                                     server_hostname="sink.localhost")
        sink_controller.start()
        listener = smtp_listener.start("127.0.0.1:0")
        if not args.inline:
            for k in range(args.workers):
                argv = [sys.executable, "-m", "kartu", "worker", "--interval", "0.05"]
                if k:
                    argv.append("--no-periodic")
                workers.append(subprocess.Popen(argv, cwd=c.ROOT, stdout=subprocess.DEVNULL))
            time.sleep(1.0)  # let the workers start polling
        mode = "inline (ImmediateBackend)" if args.inline else f"{args.workers} worker(s)"
        c.log(f"listener on 127.0.0.1:{listener.port}, sink on {sink_port}, {mode}")

        run = f"{os.getpid()}"
        sent_at: dict[str, float] = {}
        accepted_in: list[float] = []
        failures: list[str] = []
        expected: dict[str, list[str]] = {}

        def send(i: int) -> None:
            person = people[i]
            sender, message_id, raw = request(person, i, run)
            expected[message_id] = [str(k) for k in person["kpj"]]  # type: ignore[union-attr]
            begin = time.perf_counter()
            sent_at[message_id] = begin
            try:
                with smtplib.SMTP("127.0.0.1", listener.port, timeout=60) as client:
                    refused = client.sendmail(sender, [CARE], raw)
                if refused:
                    failures.append(f"{message_id}: {refused}")
            except (smtplib.SMTPException, OSError) as exc:
                failures.append(f"{message_id}: {type(exc).__name__} {exc}")
                return
            accepted_in.append(time.perf_counter() - begin)

        deadline = time.monotonic() + args.timeout
        first_send = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(send, range(len(people))))
        sent_done = time.perf_counter()
        got = sink.wait(len(people) - len(failures), deadline)
        if got < len(people):
            c.log(f"!! {got} of {len(people)} replies before the timeout "
                  f"({len(failures)} send failures)")
        for failure in failures[:5]:
            c.log(f"!! send failed: {failure}")

        answers = [t - sent_at[mid] for mid, (t, _raw) in sink.replies.items() if mid in sent_at]
        last_reply = max((t for t, _raw in sink.replies.values()), default=sent_done)
        correct = sum(
            1 for mid, (_t, raw) in sink.replies.items()
            if mid in expected and all(k.encode() in raw for k in expected[mid])
        )
        wrong = [mid for mid, (_t, raw) in sink.replies.items()
                 if mid in expected and not all(k.encode() in raw for k in expected[mid])]
        for mid in wrong[:3]:  # synthetic demo people: safe to show
            i = int(mid.split("-")[-1].split("@")[0])
            reply = sink.replies[mid][1].split(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace")
            c.log(f"!! no KPJ for demo person {people[i]['full_name']} / "
                  f"{people[i]['birth_place']} / {people[i]['birth_date']}: "
                  f"{reply.strip().splitlines()[0][:160]}")
        elapsed = last_reply - first_send
        rate = len(answers) / elapsed if elapsed > 0 and answers else 0.0
        a = c.summary_ms(answers) if answers else {"p50": float("nan"), "p99": float("nan")}
        s = c.summary_ms(accepted_in) if accepted_in else {"p50": float("nan"),
                                                           "p99": float("nan")}
        print(c.environment())
        print(c.table(
            ["mode", "sent", "replies", "right KPJ", "msg/s", "answer p50 ms", "answer p99 ms",
             "250 p50 ms", "250 p99 ms"],
            [[mode, len(people) - len(failures), len(answers), correct, c.fmt(rate, 1),
              c.fmt(a["p50"], 1), c.fmt(a["p99"], 1), c.fmt(s["p50"], 1),
              c.fmt(s["p99"], 1)]],
        ))
        c.emit_result({"mode": mode, "n": len(people), "sent": len(people) - len(failures),
                       "replies": len(answers), "right_kpj": correct, "msg_per_s": rate,
                       "answer_ms": a, "accept_ms": s, "other_mail": sink.other})
        if len(answers) < len(people):  # a wrong answer is the bot's business; a missing one ours
            sys.exit(1)
    finally:
        if listener is not None:
            listener.stop()
        for proc in workers:
            proc.terminate()
        for proc in workers:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if sink_controller is not None:
            sink_controller.stop()
        if args.keep:
            c.log(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
