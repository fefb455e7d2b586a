"""A causal-LM reranker's output layer, cut to the rows its `LogitScore` reads.

`LogitScore` (sentence-transformers `cross_encoder/modules/logit_score.py`) reads two columns of the
last position's logits: "yes" and "no". The model's own forward still projects the last
position onto the whole vocabulary (151,669 rows for Qwen3), so in a chain of exactly
`Transformer` then `LogitScore` the output layer is swapped for one that computes only those
rows, from the same weights, and leaves the other columns zero. Everything after the output
layer in the model's forward (a final soft-cap, a logit scale) works column by column, so the
two columns read are the ones the full projection gives.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class AnswerHead(nn.Module):
    """`head`'s output for `rows` only, in a vocabulary-wide tensor whose other columns are zero."""

    def __init__(self, head: nn.Linear, rows: list[int]):
        super().__init__()
        self.head = head
        self.vocabulary = head.out_features
        self.register_buffer("rows", torch.tensor(rows, device=head.weight.device), persistent=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        bias = None if self.head.bias is None else self.head.bias[self.rows]
        picked = nn.functional.linear(hidden, self.head.weight[self.rows], bias)
        logits = picked.new_zeros(*hidden.shape[:-1], self.vocabulary)
        logits[..., self.rows] = picked
        return logits


def narrow_answer_head(cross_encoder: Any) -> bool:
    """Swap in an AnswerHead where the chain is Transformer then LogitScore; whether it was swapped."""
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.cross_encoder.modules.logit_score import LogitScore

    modules = list(cross_encoder)
    if len(modules) != 2 or not isinstance(modules[0], Transformer) or not isinstance(modules[1], LogitScore):
        return False
    model = cross_encoder.model
    head = model.get_output_embeddings()
    if type(head) is not nn.Linear:
        return False
    score = modules[1]
    rows = [score.true_token_id] + ([] if score.false_token_id is None else [score.false_token_id])
    model.set_output_embeddings(AnswerHead(head, rows))
    return True
