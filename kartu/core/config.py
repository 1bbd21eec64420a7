"""Reading ``KARTU_*`` settings from the environment, and secrets generated on first run."""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(Exception):
    """A ``KARTU_*`` variable holds a value kartu cannot use."""


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


def secrets_file(data_dir: Path) -> Path:
    return data_dir / "secrets.json"


def load_or_create_secret(data_dir: Path, name: str, nbytes: int = 32) -> str:
    """Return the generated secret ``name`` kept in the data dir, creating it once.

    Production gives every secret through the environment; this exists so that a fresh checkout
    runs with nothing configured. It warns on stderr whenever it creates a secret.
    """
    path = secrets_file(data_dir)
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    if name not in stored:
        stored[name] = base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).decode()
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # 0600: the file holds keys.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh, indent=2)
        os.replace(tmp, path)
        sys.stderr.write(
            f"kartu: WARNING generated {name} into {path}; set it through the environment in "
            "production and keep a backup of it.\n"
        )
    return stored[name]
