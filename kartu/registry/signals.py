"""Signals of the registry app.

``persons_changed``: the registry data of some people changed (an import updated a person or
added, changed or removed one of their memberships; an edit in the admin). Sent after the change
is committed, with ``person_ids`` (a frozenset of Person primary keys). The card app listens, to
re-issue those people's cards and revoke the old ones.
"""

from __future__ import annotations

from django.dispatch import Signal

persons_changed = Signal()  # kwargs: person_ids: frozenset[int]
