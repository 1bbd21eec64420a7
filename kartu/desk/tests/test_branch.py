"""Account links made on an identity match alone (no contact on file): agents list them on the
desk, confirm them after seeing the KTP, or reject them with a reason; both audited."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from kartu.accounts import linking
from kartu.accounts.models import Link
from kartu.accounts.tests.conftest import make_member
from kartu.card import services as cards
from kartu.desk.tests.conftest import make_agent
from kartu.registry import services as registry
from kartu.registry.models import AuditEvent

pytestmark = pytest.mark.django_db

LIST = "/desk/branch/"
RIZKI_NIK = "3505120910770018"  # no email or phone on file
RIZKI = {"nik": RIZKI_NIK, "full_name": "Muhammad Rizki", "birth_place": "Blitar",
         "birth_date": "1977-10-09"}


def claim_rizki(user: User) -> Link:
    outcome = linking.claim(user, registry.parse_claim(**RIZKI))
    assert outcome.status == "branch"
    return Link.objects.get(user=user)


@pytest.fixture
def pending(loaded_registry) -> Link:  # type: ignore[no-untyped-def]
    return claim_rizki(make_member("budi@contoh.id"))


@pytest.fixture
def desk(client: Client) -> Client:
    client.force_login(make_agent())
    return client


def decisions(link: Link) -> list[tuple[str, str, str, str, str]]:
    return list(AuditEvent.objects.filter(person_id=link.person_id, channel="agent")
                .order_by("pk").values_list("action", "outcome", "reason", "agent",
                                            "requester_ref"))


def account_ref(link: Link) -> str:
    return registry.requester_reference(linking.requester_key(link.user))


def test_only_agents_see_and_act(client: Client, pending: Link) -> None:
    confirm = reverse("desk:branch_confirm", args=[pending.pk])
    reject = reverse("desk:branch_reject", args=[pending.pk])
    for response in (client.get(LIST), client.post(confirm),
                     client.post(reject, {"reason": "not_owner"})):
        assert response.status_code == 302
        assert response["Location"].startswith("/desk/login/?next=")
    client.force_login(make_member("bukan-petugas@contoh.id"))
    assert client.get(LIST).status_code == 403
    assert client.post(confirm).status_code == 403
    assert client.post(reject, {"reason": "not_owner"}).status_code == 403
    pending.refresh_from_db()
    assert pending.state == Link.State.PENDING_BRANCH
    assert not decisions(pending)


def test_the_list_masks_the_email_and_the_nik(desk: Client, pending: Link) -> None:
    html = desk.get(LIST).content.decode()
    assert "b***@contoh.id" in html and "budi@contoh.id" not in html
    assert "MUHAMMAD RIZKI" in html
    assert "************0018" in html and RIZKI_NIK not in html
    assert re.search(r"<time datetime=\"[^\"]+\">", html)  # when it was claimed
    assert f'action="/desk/branch/{pending.pk}/confirm/"' in html


def test_the_navigation_links_it_with_a_count(desk: Client, loaded_registry) -> None:
    def count() -> str:
        html = desk.get("/desk/").content.decode()
        match = re.search(r'<a href="/desk/branch/">[^<]*<span class="badge count">(\d+)</span>',
                          html)
        assert match, html
        return match.group(1)

    assert count() == "0"
    claim_rizki(make_member("budi@contoh.id"))
    assert count() == "1"


def test_confirming_links_the_account_and_is_audited_with_the_agents_name(
    desk: Client, pending: Link
) -> None:
    response = desk.post(reverse("desk:branch_confirm", args=[pending.pk]))
    assert response.status_code == 302 and response["Location"] == LIST
    pending.refresh_from_db()
    assert pending.state == Link.State.LINKED
    assert decisions(pending) == [("verify", "verified", linking.BRANCH_CONFIRMED, "ani",
                                   account_ref(pending))]
    after = desk.get(LIST).content.decode()
    assert "dikonfirmasi" in after  # the message
    assert f'id="branch-{pending.pk}"' not in after and "Tidak ada tautan" in after
    # a second click (or another agent) changes and records nothing more
    again = desk.post(reverse("desk:branch_confirm", args=[pending.pk]), follow=True)
    assert "tidak lagi menunggu" in again.content.decode()
    assert len(decisions(pending)) == 1
    # the member sees it in their own history, as theirs, without the agent's name
    member = Client()
    member.force_login(pending.user)
    dashboard = member.get("/akun/").content.decode()
    assert "dikonfirmasi petugas di kantor cabang" in dashboard
    assert "menunggu konfirmasi" not in dashboard and "ani" not in dashboard


def test_rejecting_needs_a_reason_then_unlinks_and_is_audited(
    desk: Client, pending: Link
) -> None:
    url = reverse("desk:branch_reject", args=[pending.pk])
    for data in ({}, {"reason": ""}, {"reason": "catatan bebas"}):
        assert desk.post(url, data).status_code == 302
    assert Link.objects.filter(pk=pending.pk, state=Link.State.PENDING_BRANCH).exists()
    assert not decisions(pending)

    # the account may have downloaded the person's card while the link was pending
    card = cards.current_card(pending.person.memberships.get())
    response = desk.post(url, {"reason": "not_owner"}, follow=True)
    assert "dibatalkan" in response.content.decode()
    card.refresh_from_db()
    assert card.revoked_at is not None and card.revoked_reason == "admin"
    assert not Link.objects.filter(pk=pending.pk).exists()
    assert decisions(pending) == [("verify", "not_verified",
                                   f"{linking.BRANCH_REJECTED}:not_owner", "ani",
                                   account_ref(pending))]
    # the account is no longer linked, and the person is free for the owner's own claim
    assert linking.confirmed_link(pending.user) is None
    owner = make_member("rizki@contoh.id")
    assert claim_rizki(owner).state == Link.State.PENDING_BRANCH


@pytest.mark.parametrize("page", ["card", "png", "replace"])
def test_a_card_request_that_passed_the_link_check_just_before_a_rejection_gets_no_card(
    pending: Link, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    """The rejection revokes the person's live cards; a request of the rejected account that
    had already passed the link check must not be issued a fresh one after it."""
    member = Client()
    member.force_login(pending.user)
    membership = pending.person.memberships.get()
    real = linking.confirmed_link

    def checked_then_rejected(user):  # type: ignore[no-untyped-def]
        link = real(user)
        if link is not None:  # the agent's rejection lands right after this request's check
            linking.reject_at_branch(link.pk, make_agent(), "not_owner")
        return link

    monkeypatch.setattr(linking, "confirmed_link", checked_then_rejected)
    if page == "replace":
        response = member.post(reverse("accounts:card_replace", args=[membership.pk]))
    else:
        response = member.get("/akun/kartu/" if page == "card" else reverse(
            "accounts:card_png", args=[membership.pk]))
    assert response.status_code in (302, 404)
    assert not membership.cards.filter(revoked_at__isnull=True).exists()


def test_actions_need_a_csrf_token(pending: Link) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_agent())
    assert strict.post(reverse("desk:branch_confirm", args=[pending.pk])).status_code == 403
    assert strict.post(reverse("desk:branch_reject", args=[pending.pk]),
                       {"reason": "not_owner"}).status_code == 403
    pending.refresh_from_db()
    assert pending.state == Link.State.PENDING_BRANCH


def test_the_desk_names_each_language_in_itself(desk: Client) -> None:
    html = desk.get(LIST).content.decode()
    assert '<option value="id" lang="id" selected>Bahasa Indonesia</option>' in html
    assert '<option value="en" lang="en">English</option>' in html
