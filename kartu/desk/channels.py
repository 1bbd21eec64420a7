"""How the desk talks to platforms without knowing them.

Each ``kartu/channels/<name>/`` package registers an adapter here from its ``AppConfig.ready``;
the desk only calls ``send``. Nothing in the desk imports a channel package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class TransientSendError(Exception):
    """The platform may accept the message later (timeout, 5xx, rate limit): retry."""


class PermanentSendError(Exception):
    """The platform will never accept this message (bad recipient, window closed): dead letter."""


@dataclass(frozen=True)
class Outgoing:
    channel: str
    address: str  # the recipient: email address, PSID, phone number, chat session …
    text: str
    language: str
    conversation_id: int
    message_id: int
    # The answered inbound message's transport details (email Message-ID, References, subject).
    reply_meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    platform_id: str = ""  # the platform's id for what we sent, when it gives one
    meta: dict[str, Any] = field(default_factory=dict)  # stored on the outbound message


class Adapter(Protocol):
    name: str

    def send(self, message: Outgoing) -> SendResult: ...


_ADAPTERS: dict[str, Adapter] = {}


def register(adapter: Adapter) -> None:
    _ADAPTERS[adapter.name] = adapter


def get(name: str) -> Adapter:
    try:
        return _ADAPTERS[name]
    except KeyError:
        raise PermanentSendError(f"no adapter is registered for channel {name!r}") from None


def registered() -> list[str]:
    return sorted(_ADAPTERS)
