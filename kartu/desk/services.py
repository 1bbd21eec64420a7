"""The help desk's write paths: receive a message, run the bot, deliver replies, agent actions.

A message's path::

    channel view/listener → receive()      one transaction: contact, conversation, message
                                           (unique on channel + platform id: a redelivery
                                           stops here)
    → the channel acknowledges the platform (the message is on disk first)
    → task process_inbound(message)        the bot decides; its reply and the state change are
                                           written in one transaction with exactly one Outbox row
    → task deliver(outbox)                 claims the row with a lease, calls the adapter's send(),
                                           records the result; retries with backoff; dead letters

Duplicates are confined to one window: only a worker that dies after the platform accepted a send
and before it recorded that can cause a second send. Recovery from a dead worker is the outbox's
own lease, reclaimed by a periodic job — the task backend does not reclaim crashed tasks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from kartu.core import crypto
from kartu.desk import channels
from kartu.desk.models import (
    CONTACT_AAD,
    Contact,
    Conversation,
    Message,
    Outbox,
    address_key,
)

log = logging.getLogger(__name__)

MAX_TEXT = 20_000  # characters kept of one inbound message
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 8
STALE_INBOUND = timedelta(seconds=60)


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s … capped at 15 minutes."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 900))


@dataclass(frozen=True)
class Inbound:
    """A platform event normalised by a channel adapter."""

    channel: str
    sender: str  # the channel's own sender id
    external_id: str  # the platform's message id
    text: str
    sent_at: datetime | None = None
    meta: dict[str, Any] | None = None  # transport details kept for the reply (email headers)


def address_indexes(channel: str, sender: str, ring: crypto.Keyring | None = None) -> list[str]:
    """The sender's blind index under every live index key, active first: while a blind-index
    rotation re-indexes (kartu.registry.keys), a returning sender's contact may be under either
    key, and a lookup under the active key alone would give them a second contact."""
    return crypto.blind_indexes(address_key(channel, sender), ring)


def sender_history(channel: str, sender: str, limit: int = 200) -> list[Message]:
    """What a sender sees of their own conversation, oldest first: their messages and the
    replies that were actually sent (an outgoing message still in the outbox, or failed, is
    not shown). Under every live index key, as :func:`_contact` looks contacts up."""
    rows = (Message.objects.filter(conversation__contact__channel=channel,
                                   conversation__contact__address_index__in=address_indexes(
                                       channel, sender))
            .select_related("outbox").order_by("sent_at", "pk")[:limit])
    return [m for m in rows
            if not (m.direction == Message.Direction.OUT
                    and getattr(m, "outbox", None) is not None and m.outbox.status != "sent")]


def _oldest(contacts: QuerySet[Contact]) -> Contact | None:
    """Of a sender's contacts the one kept (two exist only until a rotation merges them)."""
    return contacts.order_by("created_at", "pk").first()


def _contact(channel: str, sender: str) -> Contact:
    ring = crypto.keyring()
    indexes = address_indexes(channel, sender, ring)
    contact = _oldest(Contact.objects.filter(channel=channel, address_index__in=indexes))
    if contact is None:
        try:
            with transaction.atomic():
                contact = Contact.objects.create(
                    channel=channel, address_index=indexes[0],
                    address_index_kid=ring.active_index,
                    address_cipher=crypto.encrypt(sender, CONTACT_AAD, ring),
                )
        except IntegrityError:  # created concurrently
            contact = Contact.objects.get(channel=channel, address_index=indexes[0])
    return contact


def merge_contacts(first: int, second: int) -> int | None:
    """Merge two contacts of the same sender into the older one and return its id.

    Two contacts of one sender exist only around a blind-index rotation: one made under the old
    key and one under the new (by a process that had not yet re-read the key file, or by code
    that looked up under the active key only). Everything that points at the newer contact
    moves to the older one, which is what every lookup picks; if both have an open
    conversation, those fold into one (:func:`_fold_open_conversations`), so the member's case
    goes on in a single thread. One transaction: all of it or nothing.

    Locks are taken in the order the message path takes them (messages, then their
    conversation), so a message being processed meanwhile waits for the merge, or the merge
    for it, without a deadlock."""
    pks = [first, second]
    with transaction.atomic():
        open_conversations = list(
            Conversation.objects.filter(contact_id__in=pks)
            .exclude(status=Conversation.Status.RESOLVED).values_list("pk", flat=True))
        list(Message.objects.select_for_update().filter(conversation_id__in=open_conversations)
             .order_by("pk").values_list("pk", flat=True))
        list(Conversation.objects.select_for_update().filter(contact_id__in=pks)
             .order_by("pk").values_list("pk", flat=True))
        contacts = list(Contact.objects.select_for_update().filter(pk__in=pks)
                        .order_by("created_at", "pk"))
        if not contacts:
            return None
        keep = contacts[0]
        for drop in contacts[1:]:
            if drop.channel != keep.channel:
                raise ValueError("contacts of different channels are different senders")
            for relation in Contact._meta.related_objects:
                if relation.many_to_many:
                    raise NotImplementedError(f"move {relation.name} of a merged contact")
                name = relation.field.name
                relation.field.model._base_manager.filter(**{name: drop}).update(
                    **{name: keep})
            drop.delete()
        _fold_open_conversations(keep)
    return keep.pk


def _fold_open_conversations(contact: Contact) -> None:
    """Fold the contact's open conversations into the oldest one (it has one at most, except
    after :func:`merge_contacts`): its messages, and what the bot was told, in one thread.

    The newer conversation's facts win (the member said them last); the case stays with the
    agents if either was handed over, flagged if either was, and assigned to whoever had it."""
    conversations = list(
        Conversation.objects.select_for_update().filter(contact=contact)
        .exclude(status=Conversation.Status.RESOLVED).order_by("pk"))
    if len(conversations) < 2:
        return
    kept, newer = conversations[0], conversations[1:]
    state = kept.state
    for other in newer:
        state.update(other.state)
    everyone = conversations  # oldest first
    handed_over = [c for c in everyone if c.status == Conversation.Status.WAITING]
    latest = [c for c in reversed(everyone) if c.last_outcome or c.person_id is not None]
    Message.objects.filter(conversation__in=newer).update(conversation=kept)
    Conversation.objects.filter(pk__in=[c.pk for c in newer]).delete()
    kept.state = state
    Conversation.objects.filter(pk=kept.pk).update(
        state_cipher=kept.state_cipher,
        status=Conversation.Status.WAITING if handed_over else Conversation.Status.OPEN,
        escalation=handed_over[0].escalation if handed_over else kept.escalation,
        flagged=any(c.flagged for c in everyone),
        assigned_to=next((c.assigned_to_id for c in everyone if c.assigned_to_id), None),
        failures=max(c.failures for c in everyone),
        language=everyone[-1].language,
        last_outcome=latest[0].last_outcome if latest else "",
        person_id=latest[0].person_id if latest else None,
        updated_at=max(c.updated_at for c in everyone),
    )


def _open_conversation(contact: Contact) -> Conversation:
    conversation = (
        Conversation.objects.filter(contact=contact)
        .exclude(status=Conversation.Status.RESOLVED)
        .order_by("-pk")
        .first()
    )
    if conversation is None:
        conversation = Conversation.objects.create(contact=contact, channel=contact.channel)
    return conversation


def receive(event: Inbound, *, enqueue: bool = True) -> Message | None:
    """Store an inbound message; return None when it is a redelivery of one already stored.

    Commits before returning, so the caller may acknowledge the platform afterwards.
    """
    text = event.text if isinstance(event.text, str) else ""
    # No NUL bytes, no lone surrogates (they cannot be stored or encrypted as UTF-8).
    text = text[:MAX_TEXT].replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    try:
        with transaction.atomic():
            contact = _contact(event.channel, event.sender)
            conversation = _open_conversation(contact)
            message = Message(
                conversation=conversation, channel=event.channel,
                direction=Message.Direction.IN, external_id=event.external_id[:255],
                meta=event.meta or {}, sent_at=event.sent_at or timezone.now(),
            )
            message.text = text
            message.save()
            Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
            if enqueue:
                transaction.on_commit(partial(enqueue_process, message.pk))
    except IntegrityError:
        if Message.objects.filter(channel=event.channel, external_id=event.external_id).exists():
            log.info("redelivered %s message ignored", event.channel)
            return None
        raise
    return message


def enqueue_process(message_id: int) -> None:
    from kartu.desk.tasks import process_inbound

    try:
        process_inbound.enqueue(message_id)
    except Exception:  # the stalled-inbound job picks it up later
        log.exception("could not enqueue processing of message %s", message_id)


def enqueue_deliver(outbox_id: int) -> None:
    from kartu.desk.tasks import deliver_outbox

    try:
        deliver_outbox.enqueue(outbox_id)
    except Exception:  # the reclaim job picks it up later
        log.exception("could not enqueue delivery of outbox %s", outbox_id)


def add_reply(
    conversation: Conversation,
    text: str,
    *,
    in_reply_to: Message | None = None,
    author: AbstractBaseUser | None = None,
) -> Outbox:
    """Write an outbound message and its outbox row (inside the caller's transaction)."""
    reply = Message(conversation=conversation, channel=conversation.channel,
                    direction=Message.Direction.OUT, sent_at=timezone.now(),
                    author=author)  # type: ignore[misc]
    reply.text = text
    reply.save()
    outbox = Outbox.objects.create(message=reply, in_reply_to=in_reply_to,
                                   next_attempt_at=timezone.now())
    transaction.on_commit(partial(enqueue_deliver, outbox.pk))
    return outbox


def process_inbound(message_id: int) -> str:
    """Run the bot on one inbound message, once. Returns what happened (for logs and tests)."""
    from kartu.desk import bot

    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .select_related("conversation__contact")
            .filter(pk=message_id, direction=Message.Direction.IN)
            .first()
        )
        if message is None:
            return "missing"
        if message.processed_at is not None:
            return "already processed"
        conversation = Conversation.objects.select_for_update().get(pk=message.conversation_id)
        conversation.contact = message.conversation.contact
        outcome = bot.respond(conversation, message)
        message.processed_at = timezone.now()
        message.save(update_fields=["processed_at", "extracted_cipher"])
        conversation.save()
        if outcome.reply:
            add_reply(conversation, outcome.reply, in_reply_to=message)
        return outcome.summary


def _claim(outbox_id: int) -> bool:
    now = timezone.now()
    return Outbox.objects.filter(pk=outbox_id).filter(
        Q(status=Outbox.Status.PENDING, next_attempt_at__lte=now)
        | Q(status=Outbox.Status.SENDING, claimed_until__lt=now)
    ).update(status=Outbox.Status.SENDING, claimed_until=now + LEASE,
             attempts=F("attempts") + 1) == 1


def deliver(outbox_id: int) -> str:
    """Send one outbox entry if it is due and nobody else holds it."""
    if not _claim(outbox_id):
        return "not claimed"
    outbox = Outbox.objects.select_related(
        "message__conversation__contact", "in_reply_to"
    ).get(pk=outbox_id)
    message = outbox.message
    conversation = message.conversation
    outgoing = channels.Outgoing(
        channel=message.channel,
        address=conversation.contact.address,
        text=message.text,
        language=conversation.language,
        conversation_id=conversation.pk,
        message_id=message.pk,
        reply_meta=(outbox.in_reply_to.meta if outbox.in_reply_to else
                    _last_inbound_meta(conversation)),
    )
    try:
        result = channels.get(message.channel).send(outgoing)
    except channels.PermanentSendError as exc:
        _fail(outbox, f"permanent: {exc}", dead=True)
        return "dead"
    except Exception as exc:  # transient by default: network errors, 5xx, timeouts
        dead = outbox.attempts >= MAX_ATTEMPTS
        _fail(outbox, f"{type(exc).__name__}: {exc}", dead=dead)
        return "dead" if dead else "retry"
    with transaction.atomic():
        Outbox.objects.filter(pk=outbox.pk).update(
            status=Outbox.Status.SENT, sent_at=timezone.now(), claimed_until=None,
            platform_id=result.platform_id[:255], last_error="",
        )
        if result.meta or result.platform_id:
            meta = {**message.meta, **result.meta}
            Message.objects.filter(pk=message.pk).update(
                meta=meta, external_id=result.platform_id[:255] or None
            )
    return "sent"


def _last_inbound_meta(conversation: Conversation) -> dict[str, Any]:
    last = conversation.messages.filter(direction=Message.Direction.IN).order_by("-pk").first()
    return last.meta if last else {}


def _fail(outbox: Outbox, error: str, *, dead: bool) -> None:
    from kartu.core.logging import redact

    error = redact(error)[:2000]
    log.warning("outbox %s send failed (attempt %s): %s", outbox.pk, outbox.attempts, error)
    Outbox.objects.filter(pk=outbox.pk).update(
        status=Outbox.Status.DEAD if dead else Outbox.Status.PENDING,
        claimed_until=None, last_error=error,
        next_attempt_at=timezone.now() + backoff(outbox.attempts),
    )
    if dead:
        Conversation.objects.filter(pk=outbox.message.conversation_id).update(
            flagged=True, updated_at=timezone.now()
        )


def due_outbox_ids(limit: int = 500) -> list[int]:
    now = timezone.now()
    return list(
        Outbox.objects.filter(
            Q(status=Outbox.Status.PENDING, next_attempt_at__lte=now)
            | Q(status=Outbox.Status.SENDING, claimed_until__lt=now)
        ).values_list("pk", flat=True)[:limit]
    )


def stalled_inbound_ids(limit: int = 500) -> list[int]:
    cutoff = timezone.now() - STALE_INBOUND
    return list(
        Message.objects.filter(direction=Message.Direction.IN, processed_at__isnull=True,
                               created_at__lt=cutoff).values_list("pk", flat=True)[:limit]
    )


def retry_dead(outbox_id: int) -> bool:
    """An agent sends a dead letter again."""
    updated = Outbox.objects.filter(pk=outbox_id, status=Outbox.Status.DEAD).update(
        status=Outbox.Status.PENDING, next_attempt_at=timezone.now(), attempts=0
    )
    if updated:
        transaction.on_commit(partial(enqueue_deliver, outbox_id))
    return bool(updated)


# --- agent actions ----------------------------------------------------------------------------


def assign(conversation: Conversation, user: AbstractBaseUser | None) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        assigned_to=user, updated_at=timezone.now()
    )


def set_status(conversation: Conversation, status: str) -> None:
    """Resolve, reopen (back to the bot) or put a conversation in the agents' queue."""
    if status not in Conversation.Status.values:
        raise ValueError(f"unknown status {status!r}")
    changes: dict[str, Any] = {"status": status, "updated_at": timezone.now()}
    if status == Conversation.Status.OPEN:
        changes.update(escalation="", failures=0)
    if status == Conversation.Status.RESOLVED:
        changes.update(state_cipher=None)  # what the member gave is not kept past the case
    Conversation.objects.filter(pk=conversation.pk).update(**changes)


def set_flag(conversation: Conversation, flagged: bool) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(flagged=flagged,
                                                           updated_at=timezone.now())


def agent_reply(conversation: Conversation, user: AbstractBaseUser, text: str) -> Outbox:
    text = text.strip()
    if not text:
        raise ValueError("the reply is empty")
    with transaction.atomic():
        outbox = add_reply(conversation, text[:MAX_TEXT], author=user)
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
    return outbox


def agent_verify(
    conversation: Conversation | None, user: AbstractBaseUser, *, nik: str, full_name: str,
    birth_place: str, birth_date: str,
) -> Any:
    """An agent's manual "verify and disclose": the same rule and limits, audited with the
    agent's name. Raises registry.services.InvalidClaim for malformed input."""
    from kartu.registry import services as registry

    claim = registry.parse_claim(nik=nik, full_name=full_name, birth_place=birth_place,
                                 birth_date=birth_date)
    username = user.get_username()
    result = registry.verify_identity(claim, f"agent:{username}", agent=username)
    if conversation is not None:
        Conversation.objects.filter(pk=conversation.pk).update(
            last_outcome="agent_verified" if result.verified else "agent_not_verified",
            person_id=result.person_id if result.verified else conversation.person_id,
            updated_at=timezone.now(),
        )
    return result
