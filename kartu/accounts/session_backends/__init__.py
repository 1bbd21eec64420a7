"""Django's database and cache session stores, with a new session written once.

Django reserves a new session's key by writing it straight away (after checking that the key
is free) and then writes it again at the end of the request with its data: on a sign-in (a
new key by ``cycle_key``) that is a lookup and two writes, each in a transaction of its own,
for one session. Here a new session only gets its key (32 random characters of
``[a-z0-9]``: a collision would take ~2^82 sessions) and is written once, by the save at the
end of the request, with must-create semantics, so a key that did exist still fails loudly
instead of overwriting another session. Everything else is Django's.
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import VALID_KEY_CHARS, SessionBase
from django.utils.crypto import get_random_string


class WriteOnceOnCreate(SessionBase):
    _unsaved = False

    def create(self) -> None:
        self._session_key = get_random_string(32, VALID_KEY_CHARS)
        self._unsaved = True
        self.modified = True

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            self.create()
        self._write(must_create or self._unsaved)
        self._unsaved = False

    def _write(self, must_create: bool) -> None:
        """Write the session (the backend's own save; a subclass may write it its own way)."""
        super().save(must_create=must_create)
