"""Long-running processes that ``kartu up`` starts beside the web server and the worker.

Channel apps add their listener here (e.g. the SMTP listener: ``{"smtp": ["smtp"]}``) so that
``up`` starts it without knowing about channels.
"""

from __future__ import annotations

LISTENERS: dict[str, list[str]] = {}


def register_listener(name: str, argv: list[str]) -> None:
    LISTENERS[name] = argv


def listener_commands() -> dict[str, list[str]]:
    return dict(LISTENERS)
