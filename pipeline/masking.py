"""Passwords out of what a person sees: URLs in messages, logs and `crossrank up`'s output."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

# scheme://user:password@host or scheme://:password@host
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]+@")


def mask_url(url: str) -> str:
    """`url` with its password replaced by ***; other URLs unchanged."""
    return _PASSWORD.sub(r"\1***@", url)


def write_env_file(path: Path, env: dict[str, str]) -> Path:
    """`export NAME=VALUE` lines, passwords included, readable by the owner only: `source PATH`."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items() if value),
                    encoding="utf-8")
    return path
