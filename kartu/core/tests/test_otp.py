"""One-time codes: each subject has its own code, wrong tries and limit; a recipient's cap is
shared by every subject that sends to it."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from kartu.core import otp
from kartu.core.ratelimit import Limit

pytestmark = pytest.mark.django_db

TO = "siti@contoh.id"


def last_code() -> str:
    match = re.search(r"\b(\d{6})\b", mail.outbox[-1].body)
    assert match
    return match.group(1)


def test_a_subjects_code_and_wrong_tries_do_not_touch_another_subjects_code() -> None:
    assert otp.issue("t", "person:1:account:1", email=TO, recipient="person:1").sent
    mine = last_code()
    assert otp.issue("t", "person:1:account:2", email=TO, recipient="person:1").sent
    theirs = last_code()
    wrong = next(c for c in ("000000", "111111", "222222") if c not in (mine, theirs))
    for _ in range(otp.MAX_ATTEMPTS):
        assert not otp.verify("t", "person:1:account:2", wrong)
    assert not otp.verify("t", "person:1:account:2", theirs)  # void after five wrong tries
    assert otp.verify("t", "person:1:account:1", mine)


def test_the_recipient_cap_is_shared_and_a_refused_code_is_not_counted_for_its_subject() -> None:
    two = Limit(2, 3600)
    sent = [otp.issue("t", f"person:5:account:{n}", email=TO, recipient="person:5",
                      subject_limit=two).sent for n in (1, 1, 1, 2, 3)]
    # account 1 sends two (its own limit refuses the third), account 2 the recipient's third
    assert sent == [True, True, False, True, False]
    assert len(mail.outbox) == otp.RECIPIENT_LIMIT.count == 3
    refused = otp.issue("t", "person:5:account:3", email=TO, recipient="person:5",
                        subject_limit=two)
    assert refused.limited and not refused.sent
    # the two refusals were taken back from account 3's own count: it may still send two
    for _ in range(2):
        assert otp.issue("t", "person:5:account:3", email=TO, recipient="elsewhere",
                         subject_limit=two).sent
    # without a recipient only the subject's own limit applies
    assert otp.issue("t", "person:6:account:3", email=TO, subject_limit=two).sent


def test_the_recipient_cap_holds_across_purposes() -> None:
    """Account linking and the bot both send codes to a person's contact on file: together
    at most RECIPIENT_LIMIT an hour, whoever asks and for whatever purpose."""
    sent = [otp.issue(purpose, f"person:7:{purpose}:{n}", email=TO, recipient="person:7").sent
            for n in range(2) for purpose in ("link", "bot")]
    assert sent == [True, True, True, False]
    assert len(mail.outbox) == otp.RECIPIENT_LIMIT.count
