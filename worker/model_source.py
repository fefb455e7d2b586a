"""Where a model comes from, checked before loading it, so that a wrong setting fails at once with
one line: what was tried (a local path or a Hugging Face id), why it failed, and what to set.

Without this a missing folder reads as Hugging Face's "Repo id must use alphanumeric chars", and a
hub that cannot be reached is retried and logged several times before a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path


class ModelSourceError(ValueError):
    """A model setting that cannot work; the message is the whole story (no traceback needed)."""


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def _check_path(name: str, setting: str) -> None:
    path = Path(name).expanduser()
    if not path.exists():
        raise ModelSourceError(f"model path {name} does not exist (from {setting}): set {setting} to a folder "
                               "holding a saved model, or to a Hugging Face id")
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ModelSourceError(f"model path {name} holds no saved model (no config.json) (from {setting}): set "
                               f"{setting} to the folder that save_pretrained() wrote")


def _check_hub_id(name: str, setting: str) -> None:
    from huggingface_hub import HfApi, constants, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError as exc:
        raise ModelSourceError(f"{name!r} is neither an existing folder nor a Hugging Face id (from {setting}): "
                               f"set {setting} to a model folder or an id like BAAI/bge-reranker-v2-m3") from exc
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return  # downloaded before: loads without the hub
    if constants.HF_HUB_OFFLINE:
        raise ModelSourceError(f"no folder {name} here, and Hugging Face id {name} is not in the local cache while "
                               f"HF_HUB_OFFLINE is set "
                               f"(from {setting}): set {setting} to a local copy's folder, or unset HF_HUB_OFFLINE "
                               "to download it")
    try:
        HfApi().model_info(name, timeout=10)  # one request, no retries: an unreachable hub fails at once
    except GatedRepoError as exc:
        raise ModelSourceError(f"Hugging Face id {name} is gated (from {setting}): accept its terms on the hub and "
                               f"set HF_TOKEN, or set {setting} to a local copy's folder") from exc
    except RepositoryNotFoundError as exc:
        raise ModelSourceError(f"no model {name} on {constants.ENDPOINT} and no folder {name} here (from "
                               f"{setting}): check the id or the path, or set {setting} to a local copy's folder"
                               ) from exc
    except Exception as exc:  # refused, DNS, timeout, 5xx: whatever the HTTP library calls it
        raise ModelSourceError(f"cannot reach {constants.ENDPOINT} to download {name} ({exc}) (from {setting}): "
                               f"set {setting} to a local copy's folder, or HF_ENDPOINT to a mirror you can reach"
                               ) from exc


def check_model_source(name: str, setting: str) -> None:
    """Fail fast, with ModelSourceError, if model `name` (given by `setting`) cannot be loaded from anywhere."""
    if _looks_like_path(name) or Path(name).expanduser().exists():
        _check_path(name, setting)
    else:
        _check_hub_id(name, setting)


def check_model_sources(settings) -> None:
    """Both models of a worker's settings (the bi-encoder only when it serves Embed)."""
    check_model_source(settings.model, "CROSSRANK_MODEL (--model)")
    if settings.serves_embeddings:
        check_model_source(settings.embed_model, "CROSSRANK_EMBED_MODEL (--embed-model)")
