"""The participant registry.

A *person* (participant, "peserta") is identified by their NIK (Nomor Induk Kependudukan, the
16-digit national ID). A person holds one or more *memberships*, each with its own KPJ number
(Kartu Peserta Jamsostek, 11 digits): a worker registered by several employers has several.
Programmes: JHT (old-age savings), JKK (work accident), JKM (death), JP (pension), JKP (job loss).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from kartu.core import crypto

NIK_AAD = b"kartu:registry.person.nik"
EMAIL_AAD = b"kartu:registry.person.email"
PHONE_AAD = b"kartu:registry.person.phone"
LOCK_NIK_AAD = b"kartu:registry.niklock.nik"

PROGRAMMES = ("JHT", "JKK", "JKM", "JP", "JKP")


class Sex(models.TextChoices):
    MALE = "L", _("Laki-laki")
    FEMALE = "P", _("Perempuan")


class MembershipStatus(models.TextChoices):
    ACTIVE = "aktif", _("aktif")
    INACTIVE = "nonaktif", _("nonaktif")


class Person(models.Model):
    # The NIK is stored only as a ciphertext and a blind index (see kartu.core.crypto).
    # (Uniqueness as a Meta constraint, not unique=True, on this and the other looked-up keys:
    # on PostgreSQL unique=True adds a second, pattern-matching index that kartu never uses and
    # every insert of an import or a verification would pay for.)
    nik_index = models.CharField(max_length=32)
    nik_index_kid = models.CharField(max_length=32)
    nik_cipher = models.BinaryField()
    full_name = models.CharField(_("nama lengkap"), max_length=200)
    birth_place = models.CharField(_("tempat lahir"), max_length=100)
    birth_date = models.DateField(_("tanggal lahir"))
    sex = models.CharField(_("jenis kelamin"), max_length=1, choices=Sex.choices)
    email_cipher = models.BinaryField(null=True, blank=True)
    phone_cipher = models.BinaryField(null=True, blank=True)
    # Keyed digest of (email, phone): the importer tells a changed contact without decrypting.
    contact_digest = models.CharField(max_length=24, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("peserta")
        verbose_name_plural = _("peserta")
        constraints = [
            models.UniqueConstraint(fields=["nik_index"], name="registry_person_nik_index_uniq"),
        ]

    def __str__(self) -> str:
        return f"person #{self.pk}"

    @property
    def nik(self) -> str:
        return crypto.decrypt(self.nik_cipher, NIK_AAD)

    @property
    def email(self) -> str:
        return crypto.decrypt(self.email_cipher, EMAIL_AAD) if self.email_cipher else ""

    @property
    def phone(self) -> str:
        return crypto.decrypt(self.phone_cipher, PHONE_AAD) if self.phone_cipher else ""


class Membership(models.Model):
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="memberships")
    kpj = models.CharField(_("nomor KPJ"), max_length=11)
    employer = models.CharField(_("pemberi kerja"), max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=MembershipStatus.choices)
    registered_on = models.DateField(null=True, blank=True)
    # Space-separated programme codes from PROGRAMMES, e.g. "JHT JKK JKM JP".
    programmes = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kpj"]
        constraints = [
            models.UniqueConstraint(fields=["kpj"], name="registry_membership_kpj_uniq"),
        ]

    def __str__(self) -> str:
        return f"membership #{self.pk}"

    @property
    def programme_list(self) -> list[str]:
        return self.programmes.split()


class NikLock(models.Model):
    """Automated disclosure for a NIK is locked after too many failed attempts, until an agent
    or the owner clears it. Keyed by blind index, so it also covers NIKs not in the registry.

    The NIK is kept encrypted beside its index so that a blind-index rotation can re-index
    *every* lock, registered NIK or not: a lock that vanished with the old index key would
    unlock exactly the unknown NIKs and so tell which NIKs exist. Empty only on rows written
    before this column existed; a rotation keeps the old index key live while any remains."""

    nik_index = models.CharField(max_length=32)
    nik_cipher = models.BinaryField(null=True, blank=True)
    locked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["nik_index"], name="registry_niklock_nik_index_uniq"),
        ]

    def __str__(self) -> str:
        return f"lock {self.nik_index[:8]}…"


class AuditEvent(models.Model):
    """One verification attempt or disclosure. Append-only (database triggers refuse UPDATE
    and DELETE) and hash-chained: ``hash`` covers this record's fields and ``prev_hash``."""

    class Action(models.TextChoices):
        VERIFY = "verify"
        DISCLOSE = "disclose"
        LOCK = "lock"
        UNLOCK = "unlock"

    class Outcome(models.TextChoices):
        VERIFIED = "verified"
        NOT_VERIFIED = "not_verified"
        LIMITED = "limited"
        DISCLOSED = "disclosed"
        DONE = "done"

    at = models.DateTimeField()
    action = models.CharField(max_length=16, choices=Action.choices)
    channel = models.CharField(max_length=32)
    requester_ref = models.CharField(max_length=100)
    subject_index = models.CharField(max_length=32, blank=True)
    person_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.CharField(max_length=32, blank=True)
    agent = models.CharField(max_length=150, blank=True)
    memberships = models.CharField(max_length=200, blank=True)  # membership ids, comma-separated
    prev_hash = models.CharField(max_length=64)
    # Not unique-indexed: the chain itself (each record names its predecessor's hash, the head
    # names the last) is what `kartu audit verify` checks; an index would only slow the append.
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["subject_index"], name="registry_audit_subject_idx")]

    def __str__(self) -> str:
        return f"audit #{self.pk} {self.action} {self.outcome}"


class AuditHead(models.Model):
    """The end of the audit chain (single row, id 1). Writers lock it to append in order, and
    it lets ``kartu audit verify`` notice records cut off the end of the chain."""

    last_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)
    count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit head #{self.last_id}"
