"""The KPJ bot: one dialogue for every channel.

extract → ask for exactly what is missing (keeping what was given earlier in the conversation)
→ verify with the registry's rule and limits → reply with the KPJ number(s), or with one neutral
answer that reveals nothing. It answers in the language of the message (Indonesian by default),
never echoes a full NIK, and hands the conversation to a person when asked, after repeated
failures, when the NIK is locked, or when it cannot understand.

Reply wording lives in ``templates/desk/replies/*.txt`` (translated through Django i18n).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from kartu.core import crypto, otp
from kartu.desk.models import Conversation, Message
from kartu.registry import nik as nik_rules
from kartu.registry import services as registry

FIELDS = ("full_name", "birth_place", "birth_date", "nik")
OTP_PURPOSE = "desk-disclosure"

_WORD = re.compile(r"[a-z']+")
_EN_WORDS = frozenset(
    "my name is born the and please hello hi dear i am card number lost forgot date of birth "
    "place thank thanks you what could would can help need regards sincerely full id national "
    "your".split()
)
_ID_WORDS = frozenset(
    "saya nama lahir tanggal tempat dan mohon tolong bantu bantuan nomor kartu hilang lupa "
    "terima kasih selamat pagi siang sore malam min kak pak bu yang di tgl tmpt ttl dengan "
    "untuk ini itu sudah belum bisa apa gimana bagaimana kulo nyuwun matur".split()
)
_HUMAN = re.compile(
    r"\b(?:(?:bicara|ngobrol|bicara|hubungi|sambungkan|minta|mau|ingin|pengen|butuh)\b.{0,25}"
    r"\b(?:cs|agen|agent|admin|petugas|operator|manusia|orang|customer\s*service)\b"
    r"|(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|the\s+)?(?:human|person|agent|someone|"
    r"operator|staff|customer\s*service)|\bhuman\s+agent\b|^\s*(?:cs|agen|admin|petugas)\s*[.!?]*\s*$)",
    re.IGNORECASE | re.DOTALL,
)
_THANKS = re.compile(
    r"^\W*(?:(?:terima\s*kasih|makasih|makasi|trims|thx|thanks|thank\s+you|tq|tengkyu|matur\s+"
    r"(?:sembah\s+)?nuwun|hatur\s+nuhun|ok(?:e|ay)?|siap|baik)\b[\s\w,.!]*){1,3}\W*$",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"^\W*(?:(?:halo|hallo|hai|hi|hello|hey|pagi|siang|sore|malam|selamat\s+(?:pagi|siang|sore|"
    r"malam)|assalamu'?alaikum(?:\s+wr\.?\s*wb\.?)?|salam|permisi|min|admin|kak|gan|good\s+"
    r"(?:morning|afternoon|evening))\b[\s,.!]*){1,4}\W*$",
    re.IGNORECASE,
)
_ON_TOPIC = re.compile(
    r"\b(?:kpj|kartu|card|bpjs|jamsostek|ketenagakerjaan|nomor\s+peserta|membership|jht|"
    r"lupa|hilang|lost|forgot|nik|ktp)\b",
    re.IGNORECASE,
)
_CODE = re.compile(r"(?<!\d)(\d{3})[\s-]?(\d{3})(?!\d)")


@dataclass(frozen=True)
class Outcome:
    reply: str | None
    summary: str


def detect_language(text: str) -> str:
    words = _WORD.findall(text.lower()[:2000])
    en = sum(w in _EN_WORDS for w in words)
    idn = sum(w in _ID_WORDS for w in words)
    return "en" if en > idn and en >= 2 else "id"


def policy_for(channel: str) -> str:
    """``KARTU_DISCLOSURE_POLICY``: "direct", "confirm", or "direct,email=confirm" per channel."""
    default = "direct"
    for part in settings.KARTU_DISCLOSURE_POLICY.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep and name in ("direct", "confirm"):
            default = name
        elif sep and name == channel and value in ("direct", "confirm"):
            return value
    return default


def _render(name: str, language: str, **context: Any) -> str:
    with translation.override(language):
        return render_to_string(f"desk/replies/{name}.txt",
                                {"all_fields": FIELDS, **context}).strip()


def _escalate(conversation: Conversation, reason: str) -> None:
    conversation.status = Conversation.Status.WAITING
    conversation.escalation = reason
    conversation.flagged = True


def respond(conversation: Conversation, message: Message) -> Outcome:
    """Decide the answer to ``message``; updates ``conversation`` (the caller saves it)."""
    text = message.text
    subject = str(message.meta.get("subject") or "")
    language = detect_language(f"{subject}\n{text}")
    conversation.language = language
    lang = language

    if message.meta.get("auto_reply") is False:
        return Outcome(None, f"no auto-reply ({message.meta.get('auto_reply_reason', 'channel')})")
    if conversation.status == Conversation.Status.WAITING:
        return Outcome(None, "waiting for an agent")

    from kartu.desk.extract import extract

    found = extract(text, subject or None).as_dict()
    message.extracted = {k: v for k, v in found.items() if v}
    state = conversation.state

    if state.get("awaiting_code"):
        code = _CODE.search(text)
        if code:
            return _confirm_code(conversation, "".join(code.groups()), lang)

    if _HUMAN.search(text):
        _escalate(conversation, "requested")
        return Outcome(_render("handover", lang), "escalated: requested")

    given = {k: v for k, v in found.items() if v}
    if not given:
        if _THANKS.match(text):
            return Outcome(_render("thanks", lang), "thanks")
        if _GREETING.match(text) or _ON_TOPIC.search(f"{subject} {text}"):
            return Outcome(_render("instructions", lang, greeting=True), "instructions")
        not_understood = int(state.get("not_understood", 0)) + 1
        conversation.state = {**state, "not_understood": not_understood}
        if not_understood >= 2:
            _escalate(conversation, "not_understood")
            return Outcome(_render("handover", lang, not_understood=True),
                           "escalated: not understood")
        return Outcome(_render("off_topic", lang), "off topic")

    merged = {**{k: state[k] for k in FIELDS if state.get(k)}, **given}
    missing = [k for k in FIELDS if not merged.get(k)]
    if missing:
        conversation.state = {k: merged[k] for k in FIELDS if merged.get(k)}
        return Outcome(_render("ask_missing", lang, missing=missing,
                               have=[k for k in FIELDS if merged.get(k)]),
                       f"asked for {','.join(missing)}")
    return _verify(conversation, merged, lang)


def _verify(conversation: Conversation, fields: dict[str, str], lang: str) -> Outcome:
    try:
        claim = registry.parse_claim(nik=fields["nik"], full_name=fields["full_name"],
                                     birth_place=fields["birth_place"],
                                     birth_date=fields["birth_date"])
    except registry.InvalidClaim as exc:
        # Checked without the registry: says nothing about whether the NIK is registered.
        conversation.state = {k: v for k, v in fields.items() if k != exc.field}
        return Outcome(_render("invalid_field", lang, field=exc.field), f"invalid {exc.field}")

    requester = conversation.contact.requester_key
    policy = policy_for(conversation.channel)
    result = registry.verify_identity(claim, requester, disclose=(policy == "direct"))
    conversation.last_outcome = result.reason or "verified"
    masked = nik_rules.mask(claim.nik)

    if result.limited:
        if result.reason == "nik_locked":
            _escalate(conversation, "nik_locked")
            conversation.state = {}
            return Outcome(_render("locked", lang), "escalated: nik locked")
        minutes = max(1, (result.retry_after + 59) // 60)
        return Outcome(_render("limited", lang, minutes=minutes), "limited")

    if not result.verified:
        conversation.failures += 1
        if conversation.failures >= settings.KARTU_BOT_MAX_FAILURES:
            _escalate(conversation, "repeated_failures")
            conversation.state = {}
            return Outcome(_render("not_matched", lang, handover=True),
                           "escalated: repeated failures")
        return Outcome(_render("not_matched", lang, handover=False), "not matched")

    conversation.person_id = result.person_id
    if policy == "confirm":
        return _send_code(conversation, result, lang)
    conversation.state = {}
    conversation.status = Conversation.Status.RESOLVED
    return Outcome(_render("kpj", lang, memberships=result.memberships, masked_nik=masked),
                   "disclosed")


def _otp_subject(person_id: int, conversation: Conversation) -> str:
    """A code belongs to the person *and* the sender who asked for it (as in account linking):
    keyed by the person alone, a stranger who knows the owner's details could void the owner's
    code with wrong tries, or by asking again, and use up the codes the person may receive."""
    # The sender by a pseudonym of its channel address, not by the contact row: an index
    # rotation may merge two rows of the same sender, and the code must survive that.
    sender = crypto.pseudonym(conversation.contact.requester_key, "otp-sender")
    return f"person:{person_id}:sender:{sender}"


def _send_code(conversation: Conversation, result: registry.Verification, lang: str) -> Outcome:
    from kartu.registry.models import Person

    assert result.person_id is not None  # verified results always name the person
    person = Person.objects.get(pk=result.person_id)
    issued = otp.issue(OTP_PURPOSE, _otp_subject(person.pk, conversation), email=person.email,
                       phone=person.phone, language=lang, recipient=otp.person_recipient(person.pk),
                       subject_limit=otp.REQUESTER_LIMIT)
    if issued.limited:
        return Outcome(_render("limited", lang, minutes=60), "code limited")
    if not issued.sent:
        _escalate(conversation, "no_contact_on_file")
        conversation.state = {}
        return Outcome(_render("handover", lang, no_contact=True), "escalated: no contact")
    conversation.state = {"awaiting_code": True, "person_id": person.pk}
    return Outcome(_render("code_sent", lang, destination=issued.destination,
                           masked=issued.masked), "code sent")


def _confirm_code(conversation: Conversation, code: str, lang: str) -> Outcome:
    person_id = int(conversation.state["person_id"])
    if not otp.verify(OTP_PURPOSE, _otp_subject(person_id, conversation), code):
        conversation.failures += 1
        if conversation.failures >= settings.KARTU_BOT_MAX_FAILURES + 1:
            _escalate(conversation, "code_failures")
            conversation.state = {}
            return Outcome(_render("handover", lang), "escalated: code failures")
        return Outcome(_render("code_wrong", lang), "code wrong")
    from kartu.registry.models import Membership

    memberships = tuple(
        registry.MembershipInfo(m.kpj, m.employer, m.status,
                                m.registered_on.isoformat() if m.registered_on else None,
                                m.programme_list)
        for m in Membership.objects.filter(person_id=person_id).order_by("kpj")
    )
    verification = registry.Verification(True, False, "", memberships, person_id)
    registry.record_disclosure(verification, conversation.contact.requester_key,
                               reason="code_confirmed")
    conversation.state = {}
    conversation.status = Conversation.Status.RESOLVED
    return Outcome(_render("kpj", lang, memberships=memberships, masked_nik=""), "disclosed")
