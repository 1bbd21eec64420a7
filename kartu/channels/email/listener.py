"""The SMTP listener: mail for the care address, straight into the desk.

``kartu smtp`` (started by ``kartu up``) listens on ``KARTU_SMTP_LISTEN`` (default
127.0.0.1:2525), normally behind the agency's MTA, which relays the care address here.

* ``RCPT TO`` another address → ``550``: we are nobody's open relay.
* A message over ``KARTU_EMAIL_MAX_BYTES`` → ``552`` with a clear text (in English and
  Indonesian), at ``MAIL FROM … SIZE=`` already when the client announces the size; the sending
  server turns it into a bounce the member reads.
* ``DATA`` → the message is parsed and stored by ``inbound.accept`` in a worker thread (the
  Django ORM is synchronous) and ``250`` is answered only after that transaction committed.
  Any failure to store (database down, locked …) → ``451``: the sending server keeps the mail
  and retries; nothing is dropped silently. A redelivery of a stored message → ``250`` again.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings
from django.db import close_old_connections

from kartu.channels.email import inbound
from kartu.core.logging import redact

log = logging.getLogger(__name__)

ACCEPTED = "250 2.0.0 Message accepted for delivery"
DUPLICATE = "250 2.0.0 Message already received"
RCPT_OK = "250 2.1.5 OK"
NOT_HERE = "550 5.1.1 Mailbox unavailable: this server accepts mail for the help desk only"
TEMPORARY = "451 4.3.0 Temporary local problem: please try again later"


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``:port`` (all interfaces) or ``port`` (loopback)."""
    value = value.strip()
    if value.startswith("["):
        host, _, port = value[1:].partition("]:")
    elif ":" in value:
        host, _, port = value.rpartition(":")
    else:
        host, port = "127.0.0.1", value
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"not HOST:PORT: {value!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range: {value!r}")
    return host, number


def _store(raw: bytes, envelope_from: str | None) -> inbound.Accepted:
    """Runs in a worker thread: its own database connection, closed when unusable or old."""
    close_old_connections()
    try:
        return inbound.accept_raw(raw, envelope_from)
    finally:
        close_old_connections()


class CareHandler:
    """aiosmtpd handler: accept mail for the care address only, store it, then say 250."""

    def __init__(self, *, max_bytes: int, workers: int = 4) -> None:
        self.max_bytes = max_bytes
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kartu-smtp")

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if not inbound.is_care_address(address):
            log.info("refused mail for %s (not the care address)", redact(address))
            return NOT_HERE
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        if raw is None:
            content = envelope.content
            raw = content.encode("utf-8", "surrogateescape") if isinstance(content, str) \
                else bytes(content or b"")
        if len(raw) > self.max_bytes:  # aiosmtpd enforces it already; defensive
            return inbound.too_large_status(self.max_bytes)
        loop = asyncio.get_running_loop()
        try:
            accepted = await loop.run_in_executor(self.executor, _store, raw, envelope.mail_from)
        except Exception:
            log.exception("an incoming email could not be stored; answered 451")
            return TEMPORARY
        return DUPLICATE if accepted.duplicate else ACCEPTED

    def close(self) -> None:
        self.executor.shutdown(wait=True)


class BoundController(Controller):
    """aiosmtpd's threaded controller, also for ``port=0`` (the OS picks a free port; ``port``
    holds the real one after ``start()``)."""

    def _trigger_server(self) -> None:
        sockets = getattr(self.server, "sockets", None)
        if self.port == 0 and sockets:
            self.port = int(sockets[0].getsockname()[1])
        super()._trigger_server()


class _SMTP(SMTP):
    def __init__(self, handler: Any, *, too_large: str, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.too_large = too_large

    async def push(self, status: AnyStr) -> None:
        # aiosmtpd's own size refusals say only "552 Error: …": say what the member should do.
        if isinstance(status, str) and status.startswith("552 Error"):
            await super().push(self.too_large)
            return
        await super().push(status)


class ListenerController(BoundController):
    def __init__(self, handler: CareHandler, *, hostname: str, port: int, **kwargs: Any) -> None:
        super().__init__(handler, hostname=hostname, port=port, **kwargs)
        self.too_large = inbound.too_large_status(handler.max_bytes)

    def factory(self) -> SMTP:
        return _SMTP(self.handler, too_large=self.too_large, **self.SMTP_kwargs)


class Listener:
    """A running SMTP listener (its own thread and event loop)."""

    def __init__(self, controller: ListenerController, handler: CareHandler) -> None:
        self.controller = controller
        self.handler = handler

    @property
    def host(self) -> str:
        return str(self.controller.hostname)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def stop(self) -> None:
        self.controller.stop()
        self.handler.close()


def start(listen: str | None = None, *, max_bytes: int | None = None,
          workers: int = 4) -> Listener:
    """Start listening on ``listen`` (default ``KARTU_SMTP_LISTEN``); returns when ready."""
    host, port = parse_listen(listen or settings.KARTU_SMTP_LISTEN)
    # aiosmtpd logs every command (with addresses) at INFO: keep its warnings only.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    limit = int(max_bytes or settings.KARTU_EMAIL_MAX_BYTES)
    handler = CareHandler(max_bytes=limit, workers=workers)
    controller = ListenerController(
        handler, hostname=host, port=port, data_size_limit=limit,
        server_hostname=inbound.own_domain() or "kartu", ident="kartu", timeout=120,
        enable_SMTPUTF8=True,
    )
    try:
        controller.start()
    except BaseException:
        handler.close()
        raise
    return Listener(controller, handler)
