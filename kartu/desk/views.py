"""The agent inbox: thin views over ``kartu.desk.services`` and ``kartu.registry.services``.

Besides conversations, agents confirm at a branch the account links made on an identity match
alone (no contact on file to send a code to): ``branch_links`` and its two actions.

Only signed-in staff and members of the "agents" group get in (anonymous users are sent to the
login page, everyone else gets 403). Every change is a CSRF-protected POST that calls one service
function and redirects back with a message (post/redirect/get); a form with errors is shown again
in place. Message texts are personal data: they are decrypted on the conversation page only, never
on the list, and always rendered escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kartu.accounts import linking
from kartu.accounts.models import Link
from kartu.core.otp import mask_email
from kartu.desk import services
from kartu.desk.forms import (
    AGENTS_GROUP,
    AssignForm,
    BranchRejectForm,
    FilterForm,
    FlagForm,
    NikLockForm,
    ReplyForm,
    StatusForm,
    VerifyForm,
)
from kartu.desk.models import Conversation, Message, Outbox
from kartu.registry import nik as nik_rules
from kartu.registry import services as registry
from kartu.registry.models import AuditEvent

PAGE_SIZE = 50
AUDIT_ROWS = 50
FIELDS = ("full_name", "birth_place", "birth_date", "nik")
VERIFY_SESSION_KEY = "desk:verify:{}"

View = Callable[..., HttpResponse]


# --- access -----------------------------------------------------------------------------------


def is_agent(user: Any) -> bool:
    if not (user.is_authenticated and user.is_active):
        return False
    return bool(user.is_staff or user.is_superuser
                or user.groups.filter(name=AGENTS_GROUP).exists())


def agent_required(view: View) -> View:
    """Anonymous → the login page; signed in but not an agent → 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("desk:login"))
        if not is_agent(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def _agent(request: HttpRequest) -> AbstractBaseUser:
    user = request.user
    assert isinstance(user, AbstractBaseUser)  # agent_required has run
    return user


# --- the list ---------------------------------------------------------------------------------


@never_cache
@agent_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    channel_names = list(
        Conversation.objects.order_by("channel").values_list("channel", flat=True).distinct()
    )
    form = FilterForm(request.GET, channels=channel_names)
    form.is_valid()  # an invalid filter is ignored; the valid ones still apply
    data = getattr(form, "cleaned_data", {})

    conversations = (
        Conversation.objects.select_related("assigned_to")
        .annotate(
            message_count=Count("messages"),
            has_dead=Exists(Outbox.objects.filter(message__conversation=OuterRef("pk"),
                                                  status=Outbox.Status.DEAD)),
        )
        .order_by("-updated_at", "-pk")
    )
    if data.get("channel"):
        conversations = conversations.filter(channel=data["channel"])
    if data.get("status"):
        conversations = conversations.filter(status=data["status"])
    if data.get("flagged"):
        conversations = conversations.filter(flagged=True)
    if data.get("mine"):
        conversations = conversations.filter(assigned_to=request.user.pk)
    if data.get("dead"):
        conversations = conversations.filter(has_dead=True)

    page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "desk/inbox/list.html", {
        "form": form,
        "page": page,
        "filtered": any(data.get(k) for k in ("channel", "status", "flagged", "mine", "dead")),
    })


# --- one conversation -------------------------------------------------------------------------


@dataclass
class MessageRow:
    message: Message
    text: str
    extracted: list[tuple[str, str]] = field(default_factory=list)
    outbox: Outbox | None = None


def _field_labels() -> dict[str, str]:
    return {
        "full_name": _("Nama lengkap"),
        "birth_place": _("Tempat lahir"),
        "birth_date": _("Tanggal lahir"),
        "nik": _("NIK"),
    }


def _display_fields(values: dict[str, Any]) -> list[tuple[str, str]]:
    labels = _field_labels()
    return [
        (labels[k], nik_rules.mask(str(values[k])) if k == "nik" else str(values[k]))
        for k in FIELDS if values.get(k)
    ]


def _kpj_reply(result: dict[str, Any], language: str) -> str:
    """The member-facing KPJ answer (the bot's own wording) in the conversation's language."""
    with translation.override(language or "id"):
        return render_to_string("desk/replies/kpj.txt",
                                {"memberships": result["memberships"], "masked_nik": ""}).strip()


def _render_detail(
    request: HttpRequest,
    conversation: Conversation,
    *,
    reply_form: ReplyForm | None = None,
    verify_form: VerifyForm | None = None,
    lock_form: NikLockForm | None = None,
) -> HttpResponse:
    rows: list[MessageRow] = []
    latest: dict[str, Any] = {}
    for message in conversation.messages.select_related("outbox", "author").order_by(
        "sent_at", "pk"
    ):
        row = MessageRow(message=message, text=message.text,
                         outbox=getattr(message, "outbox", None))
        if message.direction == Message.Direction.IN:
            extracted = message.extracted
            latest.update({k: v for k, v in extracted.items() if k in FIELDS and v})
            row.extracted = _display_fields(extracted)
        rows.append(row)

    verification = request.session.get(VERIFY_SESSION_KEY.format(conversation.pk))
    if reply_form is None:
        initial = {}
        if verification and verification["verified"] and request.GET.get("prefill") == "kpj":
            initial["text"] = _kpj_reply(verification, conversation.language)
        reply_form = ReplyForm(initial=initial)
    if verify_form is None:
        verify_form = VerifyForm(initial={k: latest.get(k, "") for k in FIELDS})
    audit = (
        list(AuditEvent.objects.filter(person_id=conversation.person_id)
             .order_by("-pk")[:AUDIT_ROWS])
        if conversation.person_id is not None else []
    )
    nik_locked = bool(latest.get("nik")) and registry.is_locked(str(latest["nik"]))
    return render(request, "desk/inbox/conversation.html", {
        "conversation": conversation,
        "rows": rows,
        "has_dead": any(r.outbox and r.outbox.status == Outbox.Status.DEAD for r in rows),
        "extracted": _display_fields(latest),
        "nik_locked": nik_locked,
        "verification": verification,
        "audit": audit,
        "reply_form": reply_form,
        "verify_form": verify_form,
        "assign_form": AssignForm(initial={"assignee": conversation.assigned_to_id}),
        "lock_form": lock_form or NikLockForm(initial={"conversation": conversation.pk}),
        "Status": Conversation.Status,
        "OutboxStatus": Outbox.Status,
    })


def _conversation(pk: int) -> Conversation:
    return get_object_or_404(Conversation.objects.select_related("assigned_to"), pk=pk)


def _back(conversation: Conversation | int, anchor: str = "") -> HttpResponseRedirect:
    pk = conversation if isinstance(conversation, int) else conversation.pk
    return HttpResponseRedirect(reverse("desk:conversation", args=[pk]) + anchor)


@never_cache
@agent_required
@require_GET
def conversation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, _conversation(pk))


@never_cache
@agent_required
@require_POST
def reply(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(pk)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, conversation, reply_form=form)
    try:
        services.agent_reply(conversation, _agent(request), form.cleaned_data["text"])
    except ValueError:
        form.add_error("text", _("Balasan kosong."))
        return _render_detail(request, conversation, reply_form=form)
    request.session.pop(VERIFY_SESSION_KEY.format(conversation.pk), None)
    messages.success(request, _("Balasan disimpan dan sedang dikirim."))
    return _back(conversation, "#messages")


@never_cache
@agent_required
@require_POST
def assign(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(pk)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Petugas tidak dikenal."))
        return _back(conversation)
    assignee = form.cleaned_data["assignee"]
    services.assign(conversation, assignee)
    if assignee is None:
        messages.success(request, _("Penugasan dilepas."))
    else:
        messages.success(request, _("Ditugaskan ke %(name)s.") % {"name": assignee.get_username()})
    return _back(conversation)


@never_cache
@agent_required
@require_POST
def set_status(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Status tidak dikenal."))
        return _back(conversation)
    new = form.cleaned_data["status"]
    services.set_status(conversation, new)
    messages.success(request, {
        Conversation.Status.OPEN: _("Percakapan dibuka kembali; bot menanganinya lagi."),
        Conversation.Status.WAITING: _("Percakapan dipindahkan ke antrean petugas."),
        Conversation.Status.RESOLVED: _("Percakapan diselesaikan."),
    }[new])
    return _back(conversation)


@never_cache
@agent_required
@require_POST
def set_flag(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(pk)
    form = FlagForm(request.POST)
    form.is_valid()
    flagged = bool(form.cleaned_data.get("flagged"))
    services.set_flag(conversation, flagged)
    messages.success(request, _("Percakapan ditandai.") if flagged
                     else _("Tanda percakapan dihapus."))
    return _back(conversation)


def _claim_error(exc: registry.InvalidClaim) -> str:
    return {
        "nik": _("NIK tidak valid."),
        "birth_date": _("Tanggal lahir tidak valid."),
        "full_name": _("Nama lengkap wajib diisi."),
        "birth_place": _("Tempat lahir wajib diisi."),
    }.get(exc.field, _("Data tidak valid.")) + f" ({exc.message})"


@never_cache
@agent_required
@require_POST
def verify(request: HttpRequest, pk: int) -> HttpResponse:
    """Manual "verify and disclose": the registry's rule and limits, audited as this agent."""
    conversation = _conversation(pk)
    form = VerifyForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, conversation, verify_form=form)
    data = form.cleaned_data
    try:
        result = services.agent_verify(
            conversation, _agent(request), nik=data["nik"], full_name=data["full_name"],
            birth_place=data["birth_place"], birth_date=data["birth_date"].isoformat(),
        )
    except registry.InvalidClaim as exc:
        form.add_error(exc.field if exc.field in form.fields else None, _claim_error(exc))
        return _render_detail(request, conversation, verify_form=form)
    # Kept in the (server-side) session so the page can be reloaded without verifying again.
    request.session[VERIFY_SESSION_KEY.format(conversation.pk)] = {
        "verified": result.verified,
        "limited": result.limited,
        "reason": result.reason,
        "retry_minutes": (result.retry_after + 59) // 60 if result.retry_after else 0,
        "nik": nik_rules.mask(nik_rules.compact(data["nik"])),
        "at": timezone.now().isoformat(),
        "memberships": [
            {"kpj": m.kpj, "employer": m.employer, "status": m.status}
            for m in sorted(result.memberships, key=lambda m: m.kpj)
        ],
    }
    if result.verified:
        messages.success(request, _("Data cocok. Nomor KPJ ditampilkan di bawah."))
    elif result.limited:
        messages.warning(request, _("Verifikasi dibatasi; tidak ada data yang diungkapkan."))
    else:
        messages.warning(request, _("Data tidak cocok; tidak ada data yang diungkapkan."))
    return _back(conversation, "#verify-result")


@never_cache
@agent_required
@require_POST
def retry(request: HttpRequest, pk: int) -> HttpResponse:
    outbox = get_object_or_404(Outbox.objects.select_related("message"), pk=pk)
    if services.retry_dead(outbox.pk):
        messages.success(request, _("Pesan dijadwalkan untuk dikirim ulang."))
    else:
        messages.info(request, _("Pesan ini bukan pesan gagal; tidak ada yang dikirim ulang."))
    return _back(outbox.message.conversation_id, f"#message-{outbox.message_id}")


@never_cache
@agent_required
@require_http_methods(["GET", "POST"])
def nik_lock(request: HttpRequest) -> HttpResponse:
    """Clear the lock that repeated failed attempts put on a NIK (the agent types the NIK)."""
    if request.method == "POST":
        form = NikLockForm(request.POST)
        if form.is_valid():
            username = _agent(request).get_username()
            if registry.clear_nik_lock(form.cleaned_data["nik"], by=f"agent:{username}"):
                messages.success(request, _("Kunci NIK dibuka."))
            else:
                messages.info(request, _("NIK ini tidak sedang terkunci."))
            back = form.cleaned_data.get("conversation")
            if back and Conversation.objects.filter(pk=back).exists():
                return _back(back)
            return redirect("desk:nik_lock")
    else:
        form = NikLockForm()
    return render(request, "desk/inbox/nik_lock.html", {"form": form})


# --- account links waiting for a branch visit -------------------------------------------------


@dataclass(frozen=True)
class BranchRow:
    """What an agent needs to find the member in front of them: never the NIK in clear, never
    the account's full address."""

    pk: int
    email: str  # masked: "s***@contoh.id"
    name: str
    nik: str  # masked but for the last four digits
    claimed_at: datetime | None
    reject_form: BranchRejectForm


def _masked_email(link: Link) -> str:
    return mask_email(getattr(link.user, "email", "") or "")


def _branch_row(link: Link) -> BranchRow:
    return BranchRow(pk=link.pk, email=_masked_email(link),
                     name=link.person.full_name, nik=nik_rules.mask(link.person.nik),
                     claimed_at=link.confirmed_at,
                     reject_form=BranchRejectForm(auto_id=f"reason-{link.pk}-%s"))


@never_cache
@agent_required
@require_GET
def branch_links(request: HttpRequest) -> HttpResponse:
    page = Paginator(linking.pending_branch(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "desk/inbox/branch.html", {
        "page": page,
        "rows": [_branch_row(link) for link in page.object_list],
    })


@never_cache
@agent_required
@require_POST
def branch_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    link = linking.confirm_at_branch(pk, _agent(request))
    if link is None:
        messages.info(request, _("Tautan ini tidak lagi menunggu konfirmasi."))
    else:
        messages.success(request, _("Tautan akun %(email)s dengan %(name)s dikonfirmasi.") % {
            "email": _masked_email(link), "name": link.person.full_name})
    return redirect("desk:branch_links")


@never_cache
@agent_required
@require_POST
def branch_reject(request: HttpRequest, pk: int) -> HttpResponse:
    form = BranchRejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Pilih alasan penolakan."))
        return redirect("desk:branch_links")
    link = linking.reject_at_branch(pk, _agent(request), form.cleaned_data["reason"])
    if link is None:
        messages.info(request, _("Tautan ini tidak lagi menunggu konfirmasi."))
    else:
        messages.success(request, _("Tautan akun %(email)s dengan %(name)s dibatalkan.") % {
            "email": _masked_email(link), "name": link.person.full_name})
    return redirect("desk:branch_links")
