from __future__ import annotations

from django.db import models


class RateCounter(models.Model):
    """One fixed-window hit counter of the database rate-limit store (used without Redis).

    ``bucket`` is a keyed pseudonym of the limited key (never the key itself: keys contain
    email addresses and phone numbers); ``slot`` is the window number (unix time // period).
    """

    bucket = models.CharField(max_length=64)
    slot = models.BigIntegerField()
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "slot"], name="ratecounter_bucket_slot")
        ]

    def __str__(self) -> str:
        return f"{self.bucket}@{self.slot}={self.count}"


class PeriodicJob(models.Model):
    """A periodic job's schedule. Workers claim a due run with one conditional UPDATE, so each
    run happens once however many workers there are."""

    name = models.CharField(max_length=100, unique=True)
    next_run_at = models.DateTimeField()
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    runs = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.name


class OneTimeCode(models.Model):
    """A short-lived, single-use code sent to an email address or phone number on file.

    Only a keyed hash of the code is stored. ``subject`` says what the code proves control of
    (e.g. ``person:12``); ``purpose`` what it unlocks (``desk-disclosure``, ``account-link``)."""

    purpose = models.CharField(max_length=32)
    subject = models.CharField(max_length=64)
    code_hash = models.CharField(max_length=64)
    destination = models.CharField(max_length=8)  # "email" or "sms"
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["purpose", "subject", "-created_at"])]

    def __str__(self) -> str:
        return f"code for {self.purpose}/{self.subject}"
