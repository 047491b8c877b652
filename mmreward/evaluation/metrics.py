"""Official reward-benchmark metrics as pure functions (no I/O), with each benchmark's exact conventions.

Convention: `human[i]` is 1 (A preferred), -1 (B preferred) or 0 (tie); `margin[i] = score_A - score_B`.
"""

from __future__ import annotations

from collections.abc import Sequence


def accuracy_without_ties(human: Sequence[int], margin: Sequence[float]) -> float:
    """Pairwise accuracy over the pairs humans did not tie; a model tie (margin exactly 0) counts as wrong.

    Args:
        human: (N,) labels in {1, -1, 0}.
        margin: (N,) score_A - score_B.

    Returns:
        Accuracy in [0, 1]; NaN when every pair is a human tie.
    """
    if len(human) != len(margin):
        raise ValueError(f"human and margin differ in length ({len(human)} vs {len(margin)})")
    decided = [(h, m) for h, m in zip(human, margin) if h != 0]
    if not decided:
        return float("nan")
    correct = sum(1 for h, m in decided if (m > 0 and h == 1) or (m < 0 and h == -1))
    return correct / len(decided)
