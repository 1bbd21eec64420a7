from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.models import User
from django.core import mail
from django.core.cache import cache
from django.test import Client

from kartu.accounts import altcha

PASSWORD = "sandi-yang-cukup-panjang-1"


@pytest.fixture(autouse=True)
def _fresh_cache(db: None) -> Iterator[None]:
    """Rate-limit counters and ALTCHA markers live in the (database) cache, which a
    transactional test's flush does not empty: start every test from a clean one."""
    cache.clear()
    yield
    cache.clear()


def solved() -> str:
    """A real, freshly issued and solved ALTCHA challenge."""
    return altcha.solved_payload()


def make_member(email: str = "budi@contoh.id", password: str = PASSWORD) -> User:
    user = User.objects.create_user(username=email.split("@")[0], email=email,
                                    password=password)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


@pytest.fixture
def member() -> User:
    return make_member()


@pytest.fixture
def member_client(client: Client, member: User) -> Client:
    client.force_login(member)
    return client


def login(client: Client, email: str, password: str = PASSWORD, **extra: str):  # type: ignore[no-untyped-def]
    data = {"login": email, "password": password, "altcha": solved(), **extra}
    return client.post("/akun/login/", data)


def last_link(body: str) -> str:
    match = re.search(r"https?://[^/\s]+(/akun/[^\s]+)", body)
    assert match, body
    return match.group(1)


def code_from_outbox(to: str) -> str:
    for message in reversed(mail.outbox):
        if to in message.to:
            match = re.search(r"\b(\d{6})\b", message.body)
            assert match, message.body
            return match.group(1)
    raise AssertionError(f"no mail to {to}")


def refused_as_too_many(response) -> bool:  # type: ignore[no-untyped-def]
    """The sign-in form came back with the "too many attempts" error (kartu's sign-in limits)."""
    if response.status_code != 200:
        return False
    errors = response.context["form"].errors.as_data().get("__all__", [])
    return any(e.code == "too_many_login_attempts" for e in errors)
