"""The types every scorer and the scoring engine share: `Plan`, `ScoreResult`, the `Scorer` protocols, `ScoringError`.

This module imports no scorer and no engine, so that scorer modules (head model, yes-token, CLIP, judge) can
import it without an import cycle; the factory (`mmreward.scoring`) imports the scorers, and the scorers import
this module and the engine (`mmreward.scoring_engine`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from mmreward.data.collate import Unit
from mmreward.errors import DataError

__all__ = ["EngineScorer", "Plan", "ScoreResult", "Scorer", "ScoringError", "Unit"]


class ScoringError(DataError, RuntimeError):
    """A record could not be scored (its media failed, or it does not fit the model)."""


@dataclass
class Plan:
    """How a record is scored: its units and how their scores combine.

    combine: "pair" (units [a, b], one reward each), "pairwise" (one unit whose score is P(A better than B))
    or "pointwise" (one unit).
    """

    units: list[Unit]
    combine: str


@dataclass
class ScoreResult:
    """The score of one record; `error` is set (and scores are None) when it failed."""

    id: str
    kind: str
    score_a: float | None = None
    score_b: float | None = None
    preferred: str | None = None
    score: float | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # A judge's episode as the eval report shows it (`evaluation.report_traces.compact_trace`), when the judge
    # was asked to keep it (`JudgeScorer.trace_thumbs`); not part of `to_dict`.
    trace: dict | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """The JSON-ready result (`mmreward score` writes one per line): pair or pointwise fields, and the error."""
        if self.kind == "pair":
            out = {"id": self.id, "score_a": self.score_a, "score_b": self.score_b, "preferred": self.preferred,
                   "scores": self.scores}
        else:
            out = {"id": self.id, "score": self.score, "scores": self.scores}
        if self.error:
            out["error"] = self.error
        return out


@runtime_checkable
class Scorer(Protocol):
    """What every reward model answers: head model, yes-token scorer, CLIP scorer, agentic judge."""

    kind: str
    dimensions: list[str]

    def score(self, records: Sequence, **kwargs) -> list[ScoreResult]:
        """Score records; see `mmreward.scoring_engine.score_records` for the keyword arguments."""


@runtime_checkable
class EngineScorer(Scorer, Protocol):
    """The contract of a scorer that the batch engine (`score_records`) drives: plan, encode, forward.

    The engine plans every record, scores each distinct unit (`Unit.key`) once, encodes units with `encoder()`
    (in DataLoader worker processes when asked, so the encoder must pickle) and runs `forward_batch` on groups of
    encodings of similar length.
    """

    def plan(self, record) -> Plan:
        """The units of a record and how their scores combine; raises a `DataError` for a record it cannot score."""

    def encoder(self) -> Callable[[Unit], Any]:
        """A picklable callable turning one unit into model inputs on CPU; raises `DataError` for bad media."""

    def forward_batch(self, encodings: list) -> Any:
        """Scores of a batch of encodings: a ``(len(encodings), len(dimensions))`` float tensor."""
