"""Fixtures shared by the desk's tests: a fake channel adapter that records what is sent."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import Group, User

from kartu.desk import channels


@dataclass
class FakeAdapter:
    """Records what the desk sends; can be told to fail."""

    name: str = "test"
    sent: list[channels.Outgoing] = field(default_factory=list)
    fail_with: Exception | None = None

    def send(self, message: channels.Outgoing) -> channels.SendResult:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)
        return channels.SendResult(platform_id=f"{self.name}-out-{len(self.sent)}")


@pytest.fixture
def adapter() -> FakeAdapter:
    fake = FakeAdapter()
    channels.register(fake)
    return fake


@pytest.fixture
def other_adapter() -> FakeAdapter:
    fake = FakeAdapter(name="othertest")
    channels.register(fake)
    return fake


AGENT_PASSWORD = "kata-sandi-panjang-1"


def make_agent(username: str = "ani") -> User:
    """A user in the "agents" group (the desk's permission), password AGENT_PASSWORD."""
    user = User.objects.create_user(username, password=AGENT_PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="agents")[0])
    return user
