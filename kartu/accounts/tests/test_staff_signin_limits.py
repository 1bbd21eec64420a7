"""The desk's and the admin's sign-in forms count attempts like the portal's (signin_limits)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from kartu.accounts.tests.conftest import refused_as_too_many

pytestmark = [pytest.mark.django_db, pytest.mark.backends]

PASSWORD = "kata-sandi-panjang-1"


@pytest.mark.parametrize(("url", "staff"), [("/desk/login/", False), ("/admin/login/", True)])
def test_five_wrong_passwords_lock_the_username_and_a_right_one_takes_its_attempt_back(
    url, staff
):
    User.objects.create_user("ani", password=PASSWORD, is_staff=staff)
    User.objects.create_user("budi", password=PASSWORD, is_staff=staff)
    for _ in range(4):
        early = Client().post(url, {"username": "ani", "password": "salah-123456"})
        assert early.status_code == 200 and not refused_as_too_many(early)
    right = Client().post(url, {"username": "ani", "password": PASSWORD})
    assert right.status_code == 302  # the 5th attempt, taken back: still 4 failures
    wrong = Client().post(url, {"username": "ani", "password": "salah-123456"})
    assert wrong.status_code == 200 and not refused_as_too_many(wrong)
    assert refused_as_too_many(Client().post(url, {"username": "ani", "password": PASSWORD}))  # 6th
    assert Client().post(url, {"username": "budi", "password": PASSWORD}).status_code == 302
