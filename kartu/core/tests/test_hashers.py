"""The password hasher: OWASP's Argon2id profile, one hash at a time per process."""

from __future__ import annotations

import threading
import time

import argon2
import pytest

from kartu.core.hashers import Argon2idOwaspHasher


def test_hashes_at_the_owasp_minimum_profile() -> None:
    encoded = Argon2idOwaspHasher().encode("kata-sandi-panjang", "c2FsdHNhbHRzYWx0")
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert Argon2idOwaspHasher().verify("kata-sandi-panjang", encoded)
    assert not Argon2idOwaspHasher().verify("kata-sandi-salah", encoded)


@pytest.mark.parametrize("operation", ["verify", "encode"])
def test_request_threads_of_one_process_never_hash_at_once(
    monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    """Several request threads signing in at once take turns: never more 19 MiB hashes than
    worker processes (= cores), whatever the thread count."""
    encoded = Argon2idOwaspHasher().encode("kata-sandi-panjang", "c2FsdHNhbHRzYWx0")
    running = 0
    most = 0
    count = threading.Lock()
    # What Django's Argon2 hasher calls: PasswordHasher.verify, and low_level.hash_secret.
    owner, name = ((argon2.PasswordHasher, "verify") if operation == "verify"
                   else (argon2.low_level, "hash_secret"))
    real = getattr(owner, name)

    def slow(*args: object, **kwargs: object) -> object:
        nonlocal running, most
        with count:
            running += 1
            most = max(most, running)
        time.sleep(0.02)  # the real hash releases the GIL too: other threads run meanwhile
        try:
            return real(*args, **kwargs)
        finally:
            with count:
                running -= 1

    monkeypatch.setattr(owner, name, slow)
    hasher = Argon2idOwaspHasher()
    results: list[object] = []

    def sign_in() -> None:
        if operation == "verify":
            results.append(hasher.verify("kata-sandi-panjang", encoded))
        else:
            results.append(hasher.encode("kata-sandi-panjang", "c2FsdHNhbHRzYWx0"))

    threads = [threading.Thread(target=sign_in) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert all(results)
    assert most == 1
