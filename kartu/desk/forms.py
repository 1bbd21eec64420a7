"""Forms of the agent inbox. They only check shapes; every rule lives in the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from kartu.desk.models import Conversation
from kartu.desk.services import MAX_TEXT

AGENTS_GROUP = "agents"


def agents() -> QuerySet[Any]:
    """Users who may work in the inbox: staff, superusers and members of the agents group."""
    User = get_user_model()
    return (
        User.objects.filter(Q(is_staff=True) | Q(is_superuser=True) | Q(groups__name=AGENTS_GROUP),
                            is_active=True)
        .distinct()
        .order_by("username")
    )


class FilterForm(forms.Form):
    """The list's filters (GET)."""

    channel = forms.ChoiceField(label=_("Kanal"), required=False)
    status = forms.ChoiceField(
        label=_("Status"), required=False,
        choices=[("", _("Semua status")), *Conversation.Status.choices],
    )
    flagged = forms.BooleanField(label=_("Ditandai"), required=False)
    mine = forms.BooleanField(label=_("Ditugaskan ke saya"), required=False)
    dead = forms.BooleanField(label=_("Ada pesan gagal terkirim"), required=False)

    def __init__(self, *args: Any, channels: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["channel"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("Semua kanal")), *((c, c) for c in channels or [])]


class ReplyForm(forms.Form):
    text = forms.CharField(
        label=_("Balasan"), max_length=MAX_TEXT, strip=True,
        widget=forms.Textarea(attrs={"rows": 6}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "reply-%s")
        super().__init__(*args, **kwargs)


class AgentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.get_username())


class AssignForm(forms.Form):
    assignee = AgentChoiceField(
        label=_("Tugaskan ke"), queryset=None, required=False, empty_label=_("— tidak ada —"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "assign-%s")
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = agents()


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Conversation.Status.choices)


class FlagForm(forms.Form):
    flagged = forms.BooleanField(required=False)


class VerifyForm(forms.Form):
    """The manual "verify and disclose": the same four facts the bot asks for."""

    nik = forms.CharField(
        label=_("NIK"), max_length=40,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off",
                                      "spellcheck": "false"}),
    )
    full_name = forms.CharField(label=_("Nama lengkap"), max_length=200,
                                widget=forms.TextInput(attrs={"autocomplete": "off"}))
    birth_place = forms.CharField(label=_("Tempat lahir"), max_length=100,
                                  widget=forms.TextInput(attrs={"autocomplete": "off"}))
    birth_date = forms.DateField(
        label=_("Tanggal lahir"), input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "verify-%s")
        super().__init__(*args, **kwargs)


class NikLockForm(forms.Form):
    nik = forms.CharField(
        label=_("NIK"), max_length=40,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off",
                                      "spellcheck": "false"}),
    )
    conversation = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "lock-%s")
        super().__init__(*args, **kwargs)


class BranchRejectForm(forms.Form):
    """Rejecting a link pending a branch visit: one of the fixed reasons (no free text)."""

    reason = forms.ChoiceField(label=_("Alasan"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from kartu.accounts.linking import REJECT_REASONS

        super().__init__(*args, **kwargs)
        field = self.fields["reason"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("— pilih alasan —")), *REJECT_REASONS.items()]
