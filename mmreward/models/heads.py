"""Pooling functions and reward heads: what turns a backbone's hidden states into per-dimension rewards.

`POOLS` and `HEADS` are the registries; a reward model config names one of each.
"""

from __future__ import annotations

import torch
from torch import nn


def pool_last_token(hidden: torch.Tensor, attention_mask: torch.Tensor, **_) -> torch.Tensor:
    """Hidden state of the last non-padding token of each row (left or right padding).

    Args:
        hidden: (B, T, H) final hidden states.
        attention_mask: (B, T) 1 for real tokens, 0 for padding.

    Returns:
        (B, H)
    """
    positions = torch.arange(hidden.shape[1], device=hidden.device)
    # The largest position holding a real token; correct whichever side was padded, and never keyed on pad ids
    # (pad == eos in Qwen tokenizers).
    last = (attention_mask.long() * positions).argmax(dim=-1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def pool_mean(hidden: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor | None = None,
              **_) -> torch.Tensor:
    """Mean hidden state over the response tokens (or over all real tokens when no response mask is given).

    Args:
        hidden: (B, T, H)
        attention_mask: (B, T)
        response_mask: (B, T) 1 on the candidate response's tokens; rows without any fall back to all tokens.

    Returns:
        (B, H)
    """
    mask = attention_mask if response_mask is None else response_mask * attention_mask
    empty = mask.sum(dim=-1) == 0
    if empty.any():
        mask = torch.where(empty[:, None], attention_mask, mask)
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def pool_special_tokens(hidden: torch.Tensor, input_ids: torch.Tensor, reward_token_ids: list[int],
                        **_) -> torch.Tensor:
    """Hidden states at special reward tokens, one token per dimension (VideoAlign's `<|VQ_reward|>` …).

    Args:
        hidden: (B, T, H)
        input_ids: (B, T)
        reward_token_ids: K token ids; each must occur exactly once in every row.

    Returns:
        (B, K, H)
    """
    rows = []
    for token_id in reward_token_ids:
        hits = input_ids == token_id
        counts = hits.sum(dim=-1)
        if not torch.all(counts == 1):
            raise ValueError(f"reward token id {token_id} must occur exactly once per sequence; "
                             f"counts per row: {counts.tolist()}; check the prompt template")
        rows.append(hits.long().argmax(dim=-1))
    index = torch.stack(rows, dim=1)  # (B, K)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device)[:, None], index]


POOLS = {"last": pool_last_token, "mean": pool_mean, "special": pool_special_tokens}


class TwoLayerHead(nn.Module):
    """BaseReward's head: Linear(hidden -> inner) -> SiLU -> Linear(inner -> n_dims)."""

    def __init__(self, hidden_size: int, n_dims: int = 1, inner_size: int | None = None):
        super().__init__()
        inner = inner_size or hidden_size
        self.fc1 = nn.Linear(hidden_size, inner)
        self.act = nn.SiLU()
        self.fc2 = nn.Linear(inner, n_dims)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled: (..., H) -> rewards (..., n_dims)."""
        return self.fc2(self.act(self.fc1(pooled)))


class LinearHead(nn.Module):
    """A single linear layer (the usual sequence-classification head), for comparison."""

    def __init__(self, hidden_size: int, n_dims: int = 1, inner_size: int | None = None):
        super().__init__()
        del inner_size  # accepted so every head shares one constructor signature
        self.fc = nn.Linear(hidden_size, n_dims)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled: (..., H) -> rewards (..., n_dims)."""
        return self.fc(pooled)


HEADS = {"two_layer": TwoLayerHead, "linear": LinearHead}


def apply_head(head: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """Run a head on pooled states; for per-dimension tokens keep token k's output k (VideoAlign's diagonal).

    Args:
        head: a module of `HEADS` with n_dims outputs.
        pooled: (B, H) or (B, K, H) with K == n_dims.

    Returns:
        rewards: (B, n_dims)
    """
    out = head(pooled)
    if pooled.dim() == 2:
        return out
    return torch.diagonal(out, dim1=1, dim2=2)
