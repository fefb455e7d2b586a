"""Passwords out of what a person sees: URLs in messages, logs and `crossrank up`'s output."""

from __future__ import annotations

import shlex
from pathlib import Path

from crossrank.client.settings import mask_url

__all__ = ["mask_url", "write_env_file"]


def write_env_file(path: Path, env: dict[str, str]) -> Path:
    """`export NAME=VALUE` lines, passwords included, readable by the owner only: `source PATH`."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items() if value),
                    encoding="utf-8")
    return path
