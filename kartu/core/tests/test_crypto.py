from __future__ import annotations

import pytest

from kartu.core import crypto

AAD = b"kartu:test.column"


def test_round_trip_and_column_binding():
    blob = crypto.encrypt("3174055708900003", AAD)
    assert b"3174055708900003" not in blob
    assert crypto.decrypt(blob, AAD) == "3174055708900003"
    with pytest.raises(crypto.CryptoError, match="does not authenticate"):
        crypto.decrypt(blob, b"kartu:other.column")


def test_tampering_is_detected():
    blob = bytearray(crypto.encrypt("secret", AAD))
    blob[-1] ^= 1
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(bytes(blob), AAD)


def test_same_value_encrypts_differently_but_indexes_the_same():
    a, b = crypto.encrypt("x", AAD), crypto.encrypt("x", AAD)
    assert a != b
    assert crypto.blind_index("x") == crypto.blind_index("x") != crypto.blind_index("y")
    assert len(crypto.blind_index("x")) == 32


def test_env_keys(settings):
    k1, k2 = crypto.new_key(), crypto.new_key()
    settings.KARTU_FIELD_KEYS = f"new:{k2},old:{k1}"
    settings.KARTU_BLIND_INDEX_KEYS = f"inew:{k2},iold:{k1}"
    try:
        ring = crypto.reload_keyring()
        assert (ring.active_field, ring.index_kids) == ("new", ["inew", "iold"])
        assert crypto.key_id_of(crypto.encrypt("v", AAD)) == "new"
        assert len(set(crypto.blind_indexes("v"))) == 2
    finally:
        settings.KARTU_FIELD_KEYS = settings.KARTU_BLIND_INDEX_KEYS = ""
        crypto.reload_keyring()


def test_half_configured_env_keys_are_an_error(settings):
    settings.KARTU_FIELD_KEYS = f"a:{crypto.new_key()}"
    try:
        with pytest.raises(crypto.CryptoError, match="both"):
            crypto.reload_keyring()
    finally:
        settings.KARTU_FIELD_KEYS = ""
        crypto.reload_keyring()
