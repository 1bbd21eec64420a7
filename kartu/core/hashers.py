from __future__ import annotations

import threading

from django.contrib.auth.hashers import Argon2PasswordHasher

# One Argon2 computation at a time per process. `kartu web` runs one worker process per core
# and several request threads in each (for requests that wait on the network or the disk);
# without this, those threads would run more 19 MiB hashes than there are cores, which only
# adds memory (19 MiB each, the whole point of a memory-hard hash) and cache thrashing: the
# CPU time per hash went up and sign-ins per second went down (bench/login_bench.py).
_ONE_HASH_AT_A_TIME = threading.Lock()


class Argon2idOwaspHasher(Argon2PasswordHasher):
    """Argon2id at the OWASP minimum profile: 19 MiB, 2 passes, 1 lane (about 22 ms a hash on
    the reference machine, against 185 ms for Django's default). Hashes made with other
    parameters are upgraded on the next successful login (``must_update``)."""

    algorithm = "argon2"
    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1

    def encode(self, password: str, salt: str) -> str:
        with _ONE_HASH_AT_A_TIME:
            return str(super().encode(password, salt))

    def verify(self, password: str, encoded: str) -> bool:
        with _ONE_HASH_AT_A_TIME:
            return bool(super().verify(password, encoded))
