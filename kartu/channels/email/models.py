"""State of the email channel: where IMAP polling got to."""

from __future__ import annotations

from django.db import models


class ImapCursor(models.Model):
    """The last IMAP UID processed in one mailbox, valid only with its UIDVALIDITY (RFC 9051
    §2.3.1.1). When the server reports another UIDVALIDITY, polling starts again from the first
    message; Message-ID deduplication makes that safe."""

    mailbox = models.CharField(max_length=255, unique=True)  # "user@host:port/INBOX", no password
    uidvalidity = models.BigIntegerField(default=0)
    last_uid = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "IMAP cursor"

    def __str__(self) -> str:
        return f"{self.mailbox} (UIDVALIDITY {self.uidvalidity}, UID {self.last_uid})"
