"""The model name the gateway reports, and whether a request may name another one.

As in vLLM (`--served-model-name`), the name clients see can differ from the path the model
was loaded from; GET /v1/models lists it in OpenAI's shape, which vLLM's and Infinity's
clients read to pick a model. A request naming another model is served anyway (one worker
serves one model, and many clients send a fixed default name), unless --strict-model-name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pydantic import BaseModel, Field

from crossrank.worker.settings import WorkerSettings


class UnknownModelError(Exception):
    """A request named a model this worker does not serve, under --strict-model-name (HTTP 404)."""


class ModelCard(BaseModel):
    id: str
    object: str = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "crossrank"
    root: str
    max_model_len: int


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelCard]


@dataclass(frozen=True)
class ServedModel:
    name: str
    path: str
    strict: bool

    @classmethod
    def of(cls, settings: WorkerSettings) -> ServedModel:
        return cls(settings.served_model_name or settings.model, settings.model, settings.strict_model_name)

    def check(self, asked: str | None) -> None:
        if self.strict and asked and asked != self.name:
            raise UnknownModelError(
                f"The model `{asked}` does not exist: this worker serves `{self.name}`; "
                "send that name, or leave `model` out"
            )

    def listing(self, max_model_len: int) -> ModelList:
        return ModelList(data=[ModelCard(id=self.name, root=self.path, max_model_len=max_model_len)])
