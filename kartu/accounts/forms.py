"""Forms: allauth's, with the robot check added, and the registry-linking forms.

Field errors are in the member's language (Indonesian source strings, English catalogue)."""

from __future__ import annotations

from typing import Any

from allauth.account import forms as allauth_forms
from django import forms
from django.utils.translation import gettext_lazy as _

from kartu.accounts.altcha import AltchaField


class _RobotCheckLast:
    """The robot check goes last, just above the submit button (allauth reorders fields)."""

    fields: dict[str, forms.Field]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["altcha"] = self.fields.pop("altcha")


class LoginForm(_RobotCheckLast, allauth_forms.LoginForm):
    altcha = AltchaField()


class SignupForm(_RobotCheckLast, allauth_forms.SignupForm):
    altcha = AltchaField()


class ResetPasswordForm(_RobotCheckLast, allauth_forms.ResetPasswordForm):
    altcha = AltchaField()


class LinkForm(forms.Form):
    """Claim a person in the registry: the foundation's "full" factor set."""

    nik = forms.CharField(
        label=_("NIK"),
        max_length=24,
        help_text=_("16 angka, seperti di KTP."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
        error_messages={"required": _("NIK wajib diisi.")},
    )
    full_name = forms.CharField(
        label=_("Nama lengkap"), max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        error_messages={"required": _("Nama lengkap wajib diisi.")},
    )
    birth_place = forms.CharField(
        label=_("Tempat lahir"), max_length=100,
        error_messages={"required": _("Tempat lahir wajib diisi.")},
    )
    birth_date = forms.DateField(
        label=_("Tanggal lahir"),
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "bday"},
                               format="%Y-%m-%d"),
        error_messages={"invalid": _("Tanggal lahir tidak valid."),
                        "required": _("Tanggal lahir wajib diisi.")},
    )
    altcha = AltchaField()


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Kode verifikasi"),
        max_length=12,
        help_text=_("6 angka dari pesan yang kami kirim."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
        error_messages={"required": _("Masukkan kode verifikasi.")},
    )

    def clean_code(self) -> str:
        code = "".join(ch for ch in self.cleaned_data["code"] if ch.isdigit())
        if len(code) != 6:
            raise forms.ValidationError(_("Kode verifikasi terdiri dari 6 angka."))
        return code
