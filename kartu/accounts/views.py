"""The member's pages: dashboard, linking to the registry, Kartu Digital, active sessions.

Sign-up, sign-in, passwords, email and MFA are allauth's views (with our templates and forms).
Every page here is for a signed-in member, never cached, and every change is a CSRF-protected
POST (post/redirect/get)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from allauth.account.decorators import reauthentication_required
from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kartu.accounts import linking
from kartu.accounts.forms import CodeForm, LinkForm
from kartu.accounts.models import Link
from kartu.card import render as card_render
from kartu.card import services as card_services
from kartu.card.models import Card
from kartu.registry import nik as nik_rules
from kartu.registry import services as registry
from kartu.registry.models import AuditEvent, Membership

HISTORY_ROWS = 50


def _user(request: HttpRequest) -> AbstractBaseUser:
    user = request.user
    assert isinstance(user, AbstractBaseUser)  # login_required has run
    return user


def _language() -> str:
    return (get_language() or "id").split("-")[0]


# --- dashboard ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    channel: str
    outcome: str
    by_you: bool


def channel_label(channel: str) -> str:
    return {
        "email": _("Email"),
        "webchat": _("Chat di situs web"),
        "whatsapp": "WhatsApp",
        "telegram": "Telegram",
        "sms": "SMS",
        "phone": _("Telepon"),
        "voice": _("Telepon"),
        "account": _("Akun kartu"),
        "agent": _("Petugas layanan"),
        "cli": _("Petugas (sistem)"),
        "app": _("Aplikasi"),
    }.get(channel, channel)


def outcome_label(event: AuditEvent) -> str:
    reasons = {
        "already_linked": _("Ditolak: sudah terhubung ke akun lain"),
        "code_wrong": _("Kode verifikasi salah"),
        "nik_reveal": _("NIK ditampilkan"),
        "account_link": _("Akun dihubungkan; nomor KPJ ditampilkan"),
        linking.BRANCH_CONFIRMED: _("Tautan akun dikonfirmasi petugas di kantor cabang"),
    }
    if event.reason in reasons:
        return reasons[event.reason]
    if event.reason.startswith(f"{linking.BRANCH_REJECTED}:"):
        return _("Tautan akun dibatalkan petugas di kantor cabang")
    labels: dict[str, str] = {
        AuditEvent.Outcome.VERIFIED: _("Data cocok"),
        AuditEvent.Outcome.DISCLOSED: _("Nomor KPJ diberikan"),
        AuditEvent.Outcome.NOT_VERIFIED: _("Data tidak cocok; tidak ada yang diberikan"),
        AuditEvent.Outcome.LIMITED: _("Dibatasi; tidak ada yang diberikan"),
    }
    return labels.get(event.outcome, event.outcome)


def history(user: AbstractBaseUser, person_id: int) -> list[HistoryRow]:
    """The member's own disclosure audit: channel, when, outcome. Never who asked (no requester
    reference, no agent name): only whether it was this account."""
    return [
        HistoryRow(at=e.at, channel=channel_label(e.channel), outcome=outcome_label(e),
                   by_you=by_you)
        for e, by_you in linking.own_history(user, person_id, limit=HISTORY_ROWS)
    ]


@never_cache
@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    link = Link.objects.filter(user_id=user.pk).select_related("person").first()
    context: dict[str, Any] = {"link": link}
    if link is not None and link.confirmed:
        person = link.person
        context.update({
            "person": person,
            "masked_nik": nik_rules.mask(person.nik),
            "memberships": list(person.memberships.order_by("kpj")),
            "history": history(user, person.pk),
        })
    return render(request, "accounts/dashboard.html", context)


# --- linking ------------------------------------------------------------------------------------


def _claim_error(exc: registry.InvalidClaim) -> str:
    return {
        "nik": _("NIK tidak valid. Periksa kembali 16 angka NIK Anda."),
        "birth_date": _("Tanggal lahir tidak valid."),
        "full_name": _("Nama lengkap wajib diisi."),
        "birth_place": _("Tempat lahir wajib diisi."),
    }.get(exc.field, _("Data tidak valid."))


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def link(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if linking.confirmed_link(user) is not None:
        messages.info(request, _("Akun Anda sudah terhubung dengan data kepesertaan."))
        return redirect("accounts:dashboard")
    form = LinkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            claim = registry.parse_claim(
                nik=data["nik"], full_name=data["full_name"], birth_place=data["birth_place"],
                birth_date=data["birth_date"],
            )
        except registry.InvalidClaim as exc:
            form.add_error(exc.field if exc.field in form.fields else None, _claim_error(exc))
        else:
            outcome = linking.claim(user, claim, language=_language())
            if outcome.status == "code_sent":
                messages.success(request, _("Kode verifikasi dikirim ke %(to)s.")
                                 % {"to": outcome.masked})
                return redirect("accounts:link_code")
            if outcome.status == "branch":
                messages.success(request, _(
                    "Data Anda cocok dan akun Anda sudah terhubung. Karena kami tidak punya "
                    "email atau nomor telepon Anda, petugas akan mengonfirmasi data Anda saat "
                    "Anda datang ke kantor cabang dengan membawa KTP."))
                return redirect("accounts:dashboard")
            form.add_error(None, {
                "not_matched": _(
                    "Data yang Anda masukkan tidak cocok dengan data kepesertaan kami. Periksa "
                    "kembali NIK, nama lengkap, tempat dan tanggal lahir sesuai KTP."),
                "limited": _(
                    "Terlalu banyak percobaan. Demi keamanan, coba lagi nanti atau hubungi "
                    "kantor cabang."),
                "already_linked": _(
                    "Data kepesertaan ini sudah terhubung dengan akun lain. Satu peserta hanya "
                    "dapat memiliki satu akun. Jika itu bukan Anda, segera hubungi kantor "
                    "cabang atau layanan 175."),
                "code_limited": _(
                    "Terlalu banyak kode yang diminta. Coba lagi dalam satu jam."),
            }[outcome.status])
    pending = Link.objects.filter(user_id=user.pk, state=Link.State.PENDING_CODE).exists()
    return render(request, "accounts/link.html", {"form": form, "pending": pending})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def link_code(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    link = Link.objects.filter(user_id=user.pk, state=Link.State.PENDING_CODE).first()
    if link is None:
        return redirect("accounts:dashboard" if linking.confirmed_link(user) else "accounts:link")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        outcome = linking.confirm(user, form.cleaned_data["code"])
        if outcome.status == "linked":
            messages.success(request, _("Akun Anda sudah terhubung dengan data kepesertaan."))
            return redirect("accounts:dashboard")
        if outcome.status == "already_linked":
            messages.error(request, _(
                "Data kepesertaan ini sudah terhubung dengan akun lain. Jika itu bukan Anda, "
                "segera hubungi kantor cabang atau layanan 175."))
            return redirect("accounts:link")
        form.add_error("code", _(
            "Kode salah atau sudah kedaluwarsa. Periksa kode terbaru atau minta kode baru."))
    return render(request, "accounts/link_code.html", {"form": form, "link": link})


@never_cache
@login_required
@require_POST
def link_resend(request: HttpRequest) -> HttpResponse:
    outcome = linking.resend(_user(request), language=_language())
    if outcome.status == "code_sent":
        messages.success(request, _("Kode baru dikirim ke %(to)s.") % {"to": outcome.masked})
    elif outcome.status == "code_limited":
        messages.error(request, _("Terlalu banyak kode yang diminta. Coba lagi dalam satu jam."))
    else:
        return redirect("accounts:link")
    return redirect("accounts:link_code")


# --- Kartu Digital ------------------------------------------------------------------------------


def _confirmed_or_redirect(request: HttpRequest) -> Link | HttpResponse:
    link = linking.confirmed_link(_user(request))
    if link is None:
        messages.info(request, _("Hubungkan akun Anda dengan data kepesertaan terlebih dahulu."))
        return redirect("accounts:link")
    return link


def _render_cards(request: HttpRequest, link: Link, *, reveal: bool = False) -> HttpResponse:
    """One card per membership through the card app's include (``card/_card.html``)."""
    person = link.person
    memberships = list(person.memberships.order_by("kpj"))
    current = linking.current_cards(link, memberships)
    if current is None:  # the link was rejected meanwhile
        return redirect("accounts:link")
    cards = [
        {
            "view": card_services.card_view(card, reveal_nik=reveal),
            "png_url": reverse("accounts:card_png", args=[m.pk]),
            "pdf_url": reverse("accounts:card_pdf", args=[m.pk]),
            "pdf_id1_url": reverse("accounts:card_pdf", args=[m.pk]) + "?ukuran=id1",
            "reissue_url": reverse("accounts:card_replace", args=[m.pk]),
        }
        for m, card in zip(memberships, current, strict=True)
    ]
    return render(request, "accounts/card.html", {
        "link": link,
        "cards": cards,
        "masked_nik": nik_rules.mask(person.nik),
        "revealed": reveal,
    })


@never_cache
@login_required
@require_GET
def card(request: HttpRequest) -> HttpResponse:
    link = _confirmed_or_redirect(request)
    if isinstance(link, HttpResponse):
        return link
    return _render_cards(request, link)


@never_cache
@login_required
@require_POST
@reauthentication_required
def reveal_nik(request: HttpRequest) -> HttpResponse:
    """Show the full NIK once: a POST, a recent re-authentication (allauth asks for the password
    or a second factor again and then replays this request), and an audit record."""
    link = _confirmed_or_redirect(request)
    if isinstance(link, HttpResponse):
        return link
    linking.record_nik_reveal(_user(request), link.person)
    return _render_cards(request, link, reveal=True)


def _own_membership(request: HttpRequest, pk: int) -> tuple[Link, Membership]:
    """A membership of the person this account is linked to; 404 for anything else."""
    link = linking.confirmed_link(_user(request))
    if link is None:
        raise Http404
    return link, get_object_or_404(Membership, pk=pk, person_id=link.person_id)


def _own_card(request: HttpRequest, pk: int) -> tuple[Membership, Card]:
    link, membership = _own_membership(request, pk)
    current = linking.current_cards(link, [membership])
    if current is None:
        raise Http404
    return membership, current[0]


def _download(body: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


@never_cache
@login_required
@require_GET
def card_png(request: HttpRequest, pk: int) -> HttpResponse:
    membership, card = _own_card(request, pk)
    png = card_render.render_png(card)
    return _download(png, "image/png", f"kartu-{membership.kpj}.png")


@never_cache
@login_required
@require_GET
def card_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    size: Literal["a4", "id1"] = "id1" if request.GET.get("ukuran") == "id1" else "a4"
    membership, card = _own_card(request, pk)
    pdf = card_render.render_pdf(card, size=size)
    return _download(pdf, "application/pdf", f"kartu-{membership.kpj}-{size}.pdf")


# --- sessions -----------------------------------------------------------------------------------


@never_cache
@login_required
@require_GET
def sessions(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    current = request.session.session_key
    rows = sorted(UserSession.objects.purge_and_list(user),
                  key=lambda s: (s.session_key != current, -s.created_at.timestamp()))
    return render(request, "accounts/sessions.html", {"sessions": rows, "current": current})


@never_cache
@login_required
@require_POST
def end_session(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(UserSession, pk=pk, user_id=_user(request).pk)
    if session.session_key == request.session.session_key:
        messages.info(request, _("Untuk mengakhiri sesi ini, gunakan tombol Keluar."))
    else:
        session.end()
        messages.success(request, _("Sesi itu sudah diakhiri."))
    return redirect("accounts:sessions")


@never_cache
@login_required
@require_POST
def card_replace(request: HttpRequest, pk: int) -> HttpResponse:
    """"Ganti kartu": the membership's current card is revoked (listed in ``revoked.json``) and
    a new one issued (:func:`kartu.accounts.linking.replace_card`)."""
    link, membership = _own_membership(request, pk)
    try:
        issued = linking.replace_card(link, membership)
    except LookupError:  # an agent rejected the link meanwhile
        raise Http404 from None
    if issued is None:
        messages.error(request, _(
            "Kartu untuk KPJ %(kpj)s sudah terlalu sering diganti hari ini. Coba lagi besok, "
            "atau hubungi kantor cabang.") % {"kpj": membership.kpj})
    else:
        messages.success(request, _(
            "Kartu baru untuk KPJ %(kpj)s sudah terbit. Kartu lama, termasuk cetakan dan "
            "berkasnya, tidak berlaku lagi: unduh atau cetak kartu yang baru.")
            % {"kpj": membership.kpj})
    return redirect("accounts:card")
