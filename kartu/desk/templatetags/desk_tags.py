"""Labels for the codes the desk stores (escalation reasons, verification outcomes), and the
navigation's count of account links waiting for a branch visit."""

from __future__ import annotations

from django import template
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from kartu.registry import nik as nik_rules

register = template.Library()

ESCALATIONS: dict[str, Promise] = {
    "requested": _("peserta meminta petugas"),
    "not_understood": _("pesan tidak dipahami bot"),
    "repeated_failures": _("data berulang kali tidak cocok"),
    "nik_locked": _("NIK terkunci"),
    "code_failures": _("kode verifikasi berulang kali salah"),
    "no_contact_on_file": _("tidak ada email/telepon terdaftar untuk kode"),
}

# Internal reason codes: agents may see them (members never do).
OUTCOMES: dict[str, Promise] = {
    "verified": _("cocok"),
    "agent_verified": _("cocok (diverifikasi petugas)"),
    "agent_not_verified": _("tidak cocok (diverifikasi petugas)"),
    "nik_unknown": _("NIK tidak ada di data"),
    "dob_mismatch": _("tanggal lahir tidak cocok"),
    "name_mismatch": _("nama tidak cocok"),
    "place_mismatch": _("tempat lahir tidak cocok"),
    "phone_mismatch": _("nomor telepon tidak cocok"),
    "nik_locked": _("NIK terkunci"),
    "requester_limit": _("batas percobaan peminta tercapai"),
    "too_many_failures": _("terlalu banyak percobaan gagal"),
    "cleared": _("kunci dibuka"),
    "code_confirmed": _("kode dikonfirmasi"),
}


@register.filter
def escalation_label(code: str) -> str:
    return str(ESCALATIONS.get(code, code))


@register.filter
def outcome_label(code: str) -> str:
    return str(OUTCOMES.get(code, code))


@register.filter
def masked_nik(value: str) -> str:
    return nik_rules.mask(value) if value else ""


@register.simple_tag(takes_context=True)
def pending_branch_count(context: template.Context) -> int | None:
    """How many account links wait for a branch visit (agents only; None for anyone else)."""
    from kartu.accounts.linking import pending_branch_count as count
    from kartu.desk.views import is_agent

    request = context.get("request")
    if request is None or not is_agent(request.user):
        return None
    return count()
