"""The client's settings (`crossrank rerank/info`, and the pipeline's calls to the workers), on the shared
settings model of `crossrank.common.settings`. The pipeline's settings extend these, so the variables both
read (the worker target, token, CA and timeout) have one default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crossrank.common.net import DEFAULT_TARGET
from crossrank.common.settings import (
    S,
    Settings,
    SettingsError,
    click_option,
    flag_name,
    mask_url,
    override_option,
    setting,
    settings_field,
    variable,
)

__all__ = ["ClientSettings", "Settings", "SettingsError", "click_option", "flag_name", "mask_url", "override_option",
           "setting", "settings_field", "variable"]


@dataclass(frozen=True)
class ClientSettings(Settings):
    """Where the workers are and how to call them: `crossrank rerank/info`, and the pipeline's calls."""

    worker_target: str = setting(DEFAULT_TARGET, "Worker address: host:port, a comma-separated list, or "
                                 "dns:///name:port.", flag="--target")
    auth_token: str = setting("", "Bearer token, when the worker requires one.", secret=True, flag="--token")
    tls_ca: str = setting("", "PEM CA certificate: connect with TLS.", flag="--ca-cert")
    timeout: float = setting(120.0, "Deadline per call in seconds, retries included.")

    def validate(self: S) -> S:
        if self.timeout <= 0:
            raise SettingsError(f"CROSSRANK_TIMEOUT must be above 0, not {self.timeout}")
        return super().validate()

    def client_kwargs(self) -> dict[str, Any]:
        """What `CrossrankClient` needs to reach the workers."""
        return {"target": self.worker_target, "token": self.auth_token or None, "ca_cert": self.tls_ca or None,
                "timeout": self.timeout}
