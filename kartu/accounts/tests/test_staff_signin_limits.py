"""The desk's and the admin's sign-in forms count attempts like the portal's (signin_limits)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.backends]

PASSWORD = "kata-sandi-panjang-1"


def too_many(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 200 and any(
        e.code == "too_many_login_attempts"
        for e in response.context["form"].errors.as_data().get("__all__", [])
    )


@pytest.mark.parametrize(("url", "staff"), [("/desk/login/", False), ("/admin/login/", True)])
def test_five_wrong_passwords_lock_the_username_and_a_right_one_takes_its_attempt_back(
    url, staff
):
    User.objects.create_user("ani", password=PASSWORD, is_staff=staff)
    User.objects.create_user("budi", password=PASSWORD, is_staff=staff)
    for _ in range(4):
        wrong = Client().post(url, {"username": "ani", "password": "salah-123456"})
        assert wrong.status_code == 200 and not too_many(wrong)
    right = Client().post(url, {"username": "ani", "password": PASSWORD})
    assert right.status_code == 302  # the 5th attempt, taken back: still 4 failures
    assert not too_many(Client().post(url, {"username": "ani", "password": "salah-123456"}))
    assert too_many(Client().post(url, {"username": "ani", "password": PASSWORD}))  # 6th
    assert Client().post(url, {"username": "budi", "password": PASSWORD}).status_code == 302
