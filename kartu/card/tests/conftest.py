from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kartu.card import keys


@pytest.fixture(autouse=True)
def _fresh_key_cache():  # type: ignore[no-untyped-def]
    """Keys cached by one test must not leak into the next (its database was rolled back)."""
    keys.reset_cache()
    yield
    keys.reset_cache()


@pytest.fixture
def membership(loaded_registry):  # type: ignore[no-untyped-def]
    """SITI NURHALIZA's active membership (she also has 12345678901, inactive)."""
    from kartu.registry.models import Membership

    return Membership.objects.select_related("person").get(kpj="10987654321")


@pytest.fixture
def card(membership):  # type: ignore[no-untyped-def]
    from kartu.card import services

    return services.current_card(membership)


@pytest.fixture
def qr_text(card) -> str:  # type: ignore[no-untyped-def]
    from kartu.card import services

    return services.qr_text(card)


@pytest.fixture
def other_signer() -> keys.Signer:
    """A P-256 key that the agency never published."""
    return keys._signer(ec.generate_private_key(ec.SECP256R1()))
