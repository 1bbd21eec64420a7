"""The help desk's channel-neutral model (in the spirit of Chatwoot and Zammad).

* ``Contact``: one sender on one channel (a Messenger PSID, an email address, a phone number).
* ``Conversation``: a contact's thread with the agency; the bot keeps what was already given
  here across messages.
* ``Message``: inbound or outbound; ``external_id`` is the platform's message id, unique per
  channel, so a redelivered message is recognised and never answered twice.
* ``Outbox``: exactly one per answered inbound message; background tasks send it with retries,
  claiming it with a lease (``claimed_until``) that any worker may take over once it expires.

Message texts, contact addresses and extracted fields are personal data: they are stored
encrypted with the registry's field keys (``kartu.core.crypto``) and decrypted only for the bot
and for display to agents.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from kartu.core import crypto

CONTACT_AAD = b"kartu:desk.contact.address"
TEXT_AAD = b"kartu:desk.message.text"
STATE_AAD = b"kartu:desk.conversation.state"
EXTRACTED_AAD = b"kartu:desk.message.extracted"


def _seal(value: str, aad: bytes) -> bytes:
    return crypto.encrypt(value, aad)


def _open(blob: bytes | memoryview | None, aad: bytes) -> str:
    return crypto.decrypt(blob, aad) if blob else ""


def address_key(channel: str, sender: str) -> str:
    """What a contact's blind index is computed from (also its requester key)."""
    return f"{channel}:{sender}"


class Contact(models.Model):
    channel = models.CharField(max_length=20)
    # Blind index of the sender id (lookups) + its ciphertext (to answer). Looked up under every
    # live index key; a blind-index rotation moves it to the new key (kartu.registry.keys).
    address_index = models.CharField(max_length=32)
    # The index key it was made with; "" for contacts made before the key id was kept (the
    # next rotation re-indexes them like any other).
    address_index_kid = models.CharField(max_length=32, blank=True, default="")
    address_cipher = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "address_index"],
                                    name="desk_contact_channel_address")
        ]

    def __str__(self) -> str:
        return f"{self.channel} contact #{self.pk}"

    @property
    def address(self) -> str:
        return _open(self.address_cipher, CONTACT_AAD)

    @property
    def requester_key(self) -> str:
        """The key rate limits and the audit know this sender by, e.g. ``email:a@b.id``."""
        return address_key(self.channel, self.address)


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("terbuka")  # the bot is handling it
        WAITING = "waiting", _("menunggu petugas")  # handed to a person
        RESOLVED = "resolved", _("selesai")

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    channel = models.CharField(max_length=20, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN,
                              db_index=True)
    flagged = models.BooleanField(default=False, db_index=True)
    escalation = models.CharField(max_length=32, blank=True)  # why it was handed over
    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    language = models.CharField(max_length=5, default="id")
    failures = models.PositiveSmallIntegerField(default=0)
    # What the member already gave (name, place, date, NIK), encrypted JSON.
    state_cipher = models.BinaryField(null=True, blank=True)
    last_outcome = models.CharField(max_length=32, blank=True)
    person_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"conversation #{self.pk}"

    @property
    def state(self) -> dict[str, Any]:
        raw = _open(self.state_cipher, STATE_AAD)
        return json.loads(raw) if raw else {}

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        self.state_cipher = _seal(json.dumps(value), STATE_AAD) if value else None


class Message(models.Model):
    class Direction(models.TextChoices):
        IN = "in", _("masuk")
        OUT = "out", _("keluar")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE,
                                     related_name="messages")
    channel = models.CharField(max_length=20)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    # The platform's id (Messenger mid, wamid, email Message-ID …); unique per channel.
    # NULL (not "") for our own replies until the platform gives an id: unique allows many NULLs.
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    text_cipher = models.BinaryField()
    extracted_cipher = models.BinaryField(null=True, blank=True)
    # Non-personal transport details (email threading headers, subject marker …).
    meta = models.JSONField(default=dict, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="+")
    sent_at = models.DateTimeField()  # when the member sent it / when we created the reply
    processed_at = models.DateTimeField(null=True, blank=True)  # inbound: the bot has run
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sent_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"],
                                    name="desk_message_channel_external_id")
        ]
        indexes = [models.Index(fields=["direction", "processed_at"])]

    def __str__(self) -> str:
        return f"{self.direction} message #{self.pk}"

    @property
    def text(self) -> str:
        return _open(self.text_cipher, TEXT_AAD)

    @text.setter
    def text(self, value: str) -> None:
        self.text_cipher = _seal(value, TEXT_AAD)

    @property
    def extracted(self) -> dict[str, Any]:
        raw = _open(self.extracted_cipher, EXTRACTED_AAD)
        return json.loads(raw) if raw else {}

    @extracted.setter
    def extracted(self, value: dict[str, Any]) -> None:
        self.extracted_cipher = _seal(json.dumps(value), EXTRACTED_AAD) if value else None


class Outbox(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("menunggu dikirim")
        SENDING = "sending", _("sedang dikirim")
        SENT = "sent", _("terkirim")
        DEAD = "dead", _("gagal (dead letter)")

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="outbox")
    # The inbound message this answers: unique, so one inbound message gets one reply at most.
    in_reply_to = models.OneToOneField(Message, null=True, blank=True, on_delete=models.CASCADE,
                                       related_name="reply_outbox")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING,
                              db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    platform_id = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"outbox #{self.pk} {self.status}"
