"""A member's account linked to their person in the registry (one person, one account)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from kartu.registry.models import Person


class Link(models.Model):
    class State(models.TextChoices):
        # identity matched; waiting for the one-time code sent to the contact on file
        PENDING_CODE = "pending_code", _("menunggu kode")
        # identity matched and the code proved control of the contact on file
        LINKED = "linked", _("terhubung")
        # identity matched, no contact on file: an agent confirms at a branch (the desk lists it)
        PENDING_BRANCH = "pending_branch", _("menunggu konfirmasi cabang")

    CONFIRMED = (State.LINKED, State.PENDING_BRANCH)

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kartu_link"
    )
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="account_links")
    state = models.CharField(_("status"), max_length=16, choices=State.choices)
    # where the last one-time code went, masked ("s***@contoh.id"); never the full contact
    code_sent_to = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("tautan akun")
        verbose_name_plural = _("tautan akun")
        constraints = [
            # Only a confirmed link holds the person: a stranger's unconfirmed claim (someone
            # who knows a leaked NIK) must never lock the real owner out.
            models.UniqueConstraint(
                fields=["person"],
                condition=Q(state__in=["linked", "pending_branch"]),
                name="accounts_link_one_account_per_person",
            )
        ]
        indexes = [
            # the desk's list and count of links waiting for a branch visit, oldest first
            models.Index(fields=["confirmed_at"], condition=Q(state="pending_branch"),
                         name="accounts_link_pending_branch"),
        ]

    def __str__(self) -> str:
        return f"link user #{self.user_id} → person #{self.person_id} ({self.state})"

    @property
    def confirmed(self) -> bool:
        return self.state in self.CONFIRMED
