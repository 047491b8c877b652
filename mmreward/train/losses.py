"""Reward-model losses as pure functions (no state, no I/O); shapes in every docstring.

Label convention (shared with the evaluation metrics): 1 = A preferred, -1 = B preferred, 0 = tie,
`IGNORE` (-100) = this pair does not label this dimension (masked out).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IGNORE = -100
LABEL_VALUES = {"A": 1, "B": -1, "tie": 0}


def bt_loss(r_a: torch.Tensor, r_b: torch.Tensor, label: torch.Tensor, margin: torch.Tensor | None = None, *,
            ties: str = "drop", tie_k: float = 5.0) -> torch.Tensor:
    """Bradley–Terry loss, optionally with ties (Rao–Kupper, as VideoAlign trains video preferences).

    With Δ = r_pref − r_other (the preferred side minus the other, i.e. label · (r_a − r_b)) and m the margin:

    - ties="drop": −log σ(Δ − m) averaged over non-tie entries; ties and IGNORE entries are left out.
    - ties="rao_kupper" with θ = tie_k > 1: non-tie −log σ(Δ − ln θ − m); tie
      −log σ(Δ − ln θ) − log σ(−Δ − ln θ) − ln(θ² − 1) (symmetric in A and B); averaged over every labelled
      entry. This is the negative log-likelihood of P(A≻B) = σ(Δ − ln θ), P(tie) = (θ² − 1)·σ(Δ − ln θ)·σ(−Δ − ln θ).

    Args:
        r_a: (B,) or (B, D) rewards of candidate A.
        r_b: same shape, candidate B.
        label: same shape, ints in {1, -1, 0, IGNORE}.
        margin: optional (B,) or same shape as r_a, ≥ 0; how much the preferred side must win by.
        ties: "drop" or "rao_kupper".
        tie_k: θ of the Rao–Kupper model (VideoAlign uses 5.0).

    Returns:
        Scalar loss (0 with a gradient path when no entry contributes).
    """
    label = label.to(r_a.device)
    diff = r_a - r_b
    m = torch.zeros_like(diff) if margin is None else _broadcast(margin.to(diff), diff)
    decided = (label == 1) | (label == -1)
    delta = torch.where(label == -1, -diff, diff)
    if ties == "drop":
        losses = -F.logsigmoid(delta - m)
        return _masked_mean(losses, decided, r_a, r_b)
    if ties != "rao_kupper":
        raise ValueError(f"ties must be 'drop' or 'rao_kupper', got {ties!r}")
    if tie_k <= 1.0:
        raise ValueError(f"tie_k must be > 1, got {tie_k}")
    log_k = math.log(tie_k)
    win = -F.logsigmoid(delta - log_k - m)
    tie = -F.logsigmoid(diff - log_k) - F.logsigmoid(-diff - log_k) - math.log(tie_k ** 2 - 1)
    tied = label == 0
    losses = torch.where(tied, tie, win)
    return _masked_mean(losses, decided | tied, r_a, r_b)


def _broadcast(margin: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if margin.dim() == 1 and like.dim() == 2:
        return margin[:, None].expand_as(like)
    return margin.expand_as(like)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
    if mask.any():
        return values[mask].mean()
    # Keep the graph connected so every rank runs the same backward under DDP.
    return sum(p.sum() for p in params) * 0.0


def centering_loss(r_a: torch.Tensor, r_b: torch.Tensor) -> torch.Tensor:
    """Reward centering penalty mean((r_a + r_b)²): keeps rewards near zero without changing preferences.

    Args:
        r_a, r_b: (B,) or (B, D)

    Returns:
        Scalar.
    """
    return ((r_a + r_b) ** 2).mean()


def regression_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error on pointwise ratings (the regression half of a HelpSteer2-Preference style mix).

    Args:
        pred: (B,) or (B, D) predicted rewards.
        target: same shape, ratings.
        mask: same shape, True where a rating exists (default: all finite targets).

    Returns:
        Scalar (0 with a gradient path when nothing is rated).
    """
    mask = torch.isfinite(target) if mask is None else mask & torch.isfinite(target)
    return _masked_mean((pred - torch.nan_to_num(target)) ** 2, mask, pred)


def labels_tensor(labels: list[dict[str, str] | None], dimensions: list[str], overall: list[str] | None = None,
                  ) -> torch.Tensor:
    """Pack per-dimension string labels into the integer convention.

    Args:
        labels: per pair, a dict dimension -> "A" | "B" | "tie" (missing dimensions are IGNORE).
        dimensions: the model's dimensions, in order.
        overall: per pair, the record's overall label, used for a dimension named "overall" (and for a single
            dimension model whose dimension a pair does not name).

    Returns:
        (B, D) long tensor.
    """
    rows = []
    for i, per_dim in enumerate(labels):
        per_dim = per_dim or {}
        row = []
        for d in dimensions:
            value = per_dim.get(d)
            if value is None and overall is not None and (d == "overall" or len(dimensions) == 1):
                value = overall[i]
            row.append(LABEL_VALUES[value] if value is not None else IGNORE)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long)
