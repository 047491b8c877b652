"""Verdicts of generative (thinking) judges: a strict parser, a strict format check, and label matching.

    verdict = parse_verdict(text, dimensions=("VQ", "MQ", "TA", "overall"))   # pairwise: "A" | "B" | "tie"
    if verdict.ok:
        correct = verdict_matches(verdict, {"overall": "A"})                  # {"overall": True}
    reward_format = float(format_ok(text))                                    # GRPO format reward

The answer format is ours (`prompts.JUDGE_TEMPLATES`): reasoning in `<think>…</think>`, then exactly one
`<answer>{JSON object}</answer>`. Parsing is strict on purpose: a reward read out of text that holds no
verdict is a reward hack ("One Token to Fool LLM-as-a-Judge", arXiv 2507.08794), so ":", "Solution", "A" or a
bare JSON object without tags parse as failures with a reason, never as a default verdict. The only fallback
is VR-Thinker's final `\\boxed{1}` / `\\boxed{2}` (its overall verdict), accepted when there is no `<answer>`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mmreward.agent.untrusted import load_json, shown
from mmreward.prompts import FreeTextVerdict

KINDS = ("pairwise", "pointwise")
# Pairwise values, case-insensitive; VR-Thinker writes 1 = first candidate, 2 = second, 0 = tie.
PAIRWISE_VALUES = {"a": "A", "b": "B", "tie": "tie", "1": "A", "2": "B", "0": "tie"}
# Master keys of arXiv 2507.08794 (§10 of SEED-SYSTEMS): whole responses that fool lenient judges and parsers.
MASTER_KEYS = (".", ":", " ", ",", "Thought process:", "Let's solve this problem step by step.", "Solution",
               "かいせつ", "解", "Respuesta")

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"
_CONTROL_TAGS = (_THINK_OPEN, _THINK_CLOSE, _ANSWER_OPEN, _ANSWER_CLOSE, "<tool_call>", "</tool_call>")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


@dataclass(frozen=True)
class Verdict:
    """A parsed final answer.

    Attributes:
        ok: whether every required dimension was read.
        verdicts: dimension -> "A" / "B" / "tie" (pairwise) or a float score (pointwise); empty when not ok.
        reason: why parsing failed (None when ok).
        kind: "pairwise" or "pointwise".
    """

    ok: bool
    verdicts: dict[str, str | float] = field(default_factory=dict)
    reason: str | None = None
    kind: str = "pairwise"


def _fail(reason: str, kind: str) -> Verdict:
    return Verdict(ok=False, verdicts={}, reason=reason, kind=kind)


def _final_region(text) -> tuple[str | None, str | None]:
    """The text after the reasoning (after the last `</think>`), or why there is none."""
    if not isinstance(text, str) or not text.strip():
        return None, "empty output"
    region = text.rsplit(_THINK_CLOSE, 1)[1] if _THINK_CLOSE in text else text
    # An answer written inside an unfinished reasoning block is not a final answer.
    if _THINK_OPEN in region:
        return None, "unclosed <think>: no final answer after the reasoning"
    return region, None


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict:
    """`json.loads` hook: a key given twice is ambiguous, so the whole answer is rejected."""
    keys = [k.casefold() for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a dimension is given twice")
    return dict(pairs)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a valid value")


def _load_object(body: str) -> tuple[dict | None, str | None]:
    """Strict JSON object of an answer block (no NaN / Infinity, no duplicate keys), or why it is not one.

    Size and nesting are bounded before parsing (`agent.untrusted.load_json`), so no answer text can raise.
    """
    if not body.strip():
        return None, "empty <answer>"
    obj, reason = load_json(body, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    if reason is not None:
        return None, f"<answer> {reason}"
    if not isinstance(obj, dict):
        return None, "<answer> is not a JSON object"
    return obj, None


def _pairwise_value(value) -> str | None:
    """"A" / "B" / "tie" from a pairwise value ("a", "Tie", "1", 2, ...), None if it is none of them."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    return PAIRWISE_VALUES.get(value.strip().casefold())


def _score_value(value, score_range: tuple[float, float]) -> float | None:
    """A finite JSON number inside `score_range`, as float; None otherwise (strings like "7" included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    low, high = score_range
    # Compare before converting: float() of an integer with hundreds of digits overflows.
    if not low <= value <= high:
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _read_dimensions(obj: dict, dimensions: Sequence[str], kind: str,
                     score_range: tuple[float, float]) -> Verdict:
    """Check that every required dimension is present with a valid value (keys match case-insensitively)."""
    keyed = {k.casefold(): v for k, v in obj.items()}
    missing = [d for d in dimensions if d.casefold() not in keyed]
    if missing:
        return _fail(f"missing dimension(s): {', '.join(missing)}", kind)
    verdicts: dict[str, str | float] = {}
    for dim in dimensions:
        raw = keyed[dim.casefold()]
        value = _pairwise_value(raw) if kind == "pairwise" else _score_value(raw, score_range)
        if value is None:
            low, high = score_range
            expected = '"A", "B" or "tie"' if kind == "pairwise" else f"a number in [{low:g}, {high:g}]"
            return _fail(f"invalid value for {dim}: {shown(raw)} (expected {expected})", kind)
        verdicts[dim] = value
    return Verdict(ok=True, verdicts=verdicts, reason=None, kind=kind)


def _boxed_verdict(region: str, dimensions: Sequence[str], kind: str) -> Verdict:
    """VR-Thinker's final `\\boxed{1|2}` as the overall verdict (only when there is no `<answer>` block)."""
    boxes = _BOXED.findall(region)
    if kind != "pairwise" or not boxes:
        return _fail("no <answer> block", kind)
    if len(boxes) > 1:
        return _fail("several answers (\\boxed{})", kind)
    value = _pairwise_value(boxes[0])
    if value is None:
        return _fail(f"invalid \\boxed{{}} verdict: {shown(boxes[0])} (expected 1 or 2)", kind)
    others = [d for d in dimensions if d != "overall"]
    if others or "overall" not in dimensions:
        missing = ", ".join(others)
        return _fail(f"\\boxed{{}} gives only the overall verdict; missing dimension(s): {missing}", kind)
    return Verdict(ok=True, verdicts={"overall": value}, reason=None, kind=kind)


def _phrase_verdict(body: str, answers: Mapping[str, str], kind: str) -> Verdict:
    """The overall verdict of an answer that must be exactly one of a template's phrases."""
    said = body.strip().rstrip(".").strip().casefold()
    for phrase, value in answers.items():
        if said == phrase.casefold():
            return Verdict(ok=True, verdicts={"overall": value}, reason=None, kind=kind)
    return _fail(f"answer {shown(body.strip())} is none of: {', '.join(answers)}", kind)


# Prose verdicts are searched in at most this much of the end of the output: the conclusion is at the end, and a
# bounded search keeps a hostile megabyte-long output cheap.
_FREE_TEXT_TAIL = 20_000


def _free_text_verdict(region: str, answers: FreeTextVerdict, dimensions: Sequence[str], kind: str) -> Verdict:
    """The overall verdict (or score) a prose judge states last in `region`."""
    if answers.score_pattern is not None:
        kind = "pointwise"
    if tuple(dimensions) != ("overall",):
        return _fail(f"a prose verdict gives only the overall verdict; missing dimension(s): "
                     f"{', '.join(d for d in dimensions if d != 'overall')}", kind)
    tail = region[-_FREE_TEXT_TAIL:]
    if answers.score_pattern is not None:
        matches = list(re.finditer(answers.score_pattern, tail, flags=re.IGNORECASE))
        if not matches:
            return _fail("no score in the output", kind)
        number = next(g for g in matches[-1].groups() if g)
        value, (low, high) = float(number), answers.score_range
        if not low <= value <= high:
            return _fail(f"score {number} outside [{low:g}, {high:g}]", kind)
        return Verdict(ok=True, verdicts={"overall": value}, reason=None, kind=kind)
    phrases = sorted(answers, key=len, reverse=True)   # the longest phrase wins where several end alike
    pattern = r"(?<![\w])(" + "|".join(re.escape(p) for p in phrases) + r")(?![\w])"
    matches = list(re.finditer(pattern, tail, flags=re.IGNORECASE))
    if not matches:
        return _fail(f"no verdict phrase ({', '.join(list(answers)[:4])}, …) in the output", kind)
    said = matches[-1].group(1).casefold()
    value = next(v for p, v in answers.items() if p.casefold() == said)
    return Verdict(ok=True, verdicts={"overall": value}, reason=None, kind=kind)


def parse_verdict(text: str, dimensions: Sequence[str] = ("overall",), kind: str = "pairwise", *,
                  score_range: tuple[float, float] = (1.0, 10.0), answers: Mapping[str, str] | None = None) -> Verdict:
    """Read a judge's final verdict: exactly one `<answer>{JSON object}</answer>` after any `</think>`.

    Rules: the answer must come after the last `</think>` (an answer inside the reasoning does not count; an
    unclosed `<think>` fails); exactly one answer block (two or more fail as "several answers"); its content
    is strict JSON, an object holding every required dimension (keys case-insensitive; extra keys ignored).
    Pairwise values are "A" / "B" / "tie" in any case, or VR-Thinker's 1 / 2 / 0 (number or string); pointwise
    values are JSON numbers in `score_range`. Text before or after the block is tolerated here (`format_ok`
    polices it). Without any `<answer>` tag, a pairwise judge's single `\\boxed{1}` / `\\boxed{2}` after the
    reasoning is read as the overall verdict (VR-Thinker); it satisfies only `dimensions=("overall",)`.

    Args:
        text: the judge's final turn (special tokens removed).
        dimensions: the dimensions that must be present, e.g. ("VQ", "MQ", "TA", "overall").
        kind: "pairwise" or "pointwise".
        score_range: the inclusive range of pointwise scores.
        answers: for templates that answer with a fixed phrase (`prompts.JUDGE_ANSWERS`, e.g. UnifiedReward-Think's
            "Image 1 is better"): phrase -> overall verdict; the `<answer>` body must be one of them (trimmed,
            case-insensitive, a final "." allowed) instead of JSON. A `FreeTextVerdict` (LLaVA-Critic) reads the
            verdict from prose instead: the last of its phrases (or scores) after the reasoning.

    Returns:
        A `Verdict`; on failure `ok` is False, `verdicts` is empty and `reason` says why. Any text gives a
        `Verdict` (model output is hostile input); only a bad `kind` or empty `dimensions` raise.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not dimensions:
        raise ValueError("dimensions must name at least one dimension")
    region, reason = _final_region(text)
    if region is None:
        return _fail(reason, kind)
    if isinstance(answers, FreeTextVerdict):
        return _free_text_verdict(region, answers, dimensions, kind)
    opens, closes = region.count(_ANSWER_OPEN), region.count(_ANSWER_CLOSE)
    if opens == 0 and closes == 0:
        return _boxed_verdict(region, dimensions, kind)
    if opens > 1 or closes > 1:
        return _fail("several answers", kind)
    start, end = region.find(_ANSWER_OPEN), region.find(_ANSWER_CLOSE)
    if opens != closes or end < start:
        return _fail("unclosed <answer>", kind)
    if answers is not None:
        return _phrase_verdict(region[start + len(_ANSWER_OPEN):end], answers, kind)
    obj, reason = _load_object(region[start + len(_ANSWER_OPEN):end])
    if obj is None:
        return _fail(reason, kind)
    return _read_dimensions(obj, dimensions, kind, score_range)


def _calls_only(rest: str) -> bool:
    """True if `rest` is one or more well-formed tool-call blocks, separated by whitespace only."""
    from mmreward.agent.protocol import parse_tool_calls

    if any(tag in rest for tag in (_THINK_OPEN, _THINK_CLOSE, _ANSWER_OPEN, _ANSWER_CLOSE)):
        return False
    calls, errors, content = parse_tool_calls(rest)
    return bool(calls) and not errors and content == ""


def _answer_only(rest: str) -> bool:
    """True if `rest` is exactly one answer block holding a non-empty, strict JSON object."""
    if not rest.endswith(_ANSWER_CLOSE) or len(rest) < len(_ANSWER_OPEN) + len(_ANSWER_CLOSE):
        return False
    body = rest[len(_ANSWER_OPEN):-len(_ANSWER_CLOSE)]
    if any(tag in body for tag in _CONTROL_TAGS):
        return False
    obj, _ = _load_object(body)
    return bool(obj)


def format_ok(text: str, *, require_think: bool = True) -> bool:
    """Strict format check of one generated turn, for GRPO format rewards.

    Accepted shape: optional leading whitespace, `<think>…</think>` (required unless `require_think=False`,
    then optional), whitespace, then EITHER one or more well-formed `<tool_call>` blocks (a tool turn) OR
    exactly one `<answer>…</answer>` block holding a non-empty strict JSON object (the final turn), then only
    whitespace. The reasoning may not contain answer, tool-call or nested think tags. Whether the object holds
    the right dimensions and values is `parse_verdict`'s business (a reward usually needs both).

    Args:
        text: the generated turn (special tokens removed).
        require_think: whether the turn must open with a reasoning block.

    Returns:
        True if the turn has exactly this shape; False for anything else (never raises).
    """
    if not isinstance(text, str):
        return False
    rest = text.lstrip()
    if rest.startswith(_THINK_OPEN):
        end = rest.find(_THINK_CLOSE)
        if end < 0 or any(tag in rest[len(_THINK_OPEN):end] for tag in _CONTROL_TAGS):
            return False
        rest = rest[end + len(_THINK_CLOSE):]
    elif require_think:
        return False
    rest = rest.strip()
    if rest.startswith(_ANSWER_OPEN):
        return _answer_only(rest)
    return rest.startswith("<tool_call>") and _calls_only(rest)


def _label_value(label, kind: str):
    """A ground-truth label in the form `parse_verdict` returns; ValueError for a label that is none."""
    value = _pairwise_value(label) if kind == "pairwise" else _score_value(label, (-math.inf, math.inf))
    if value is None:
        raise ValueError(f"invalid {kind} label {label!r}")
    return value


def verdict_matches(verdict: Verdict, labels: Mapping[str, str | int | float]) -> dict[str, bool]:
    """Per-dimension correctness of a verdict against ground-truth labels.

    Args:
        verdict: a parsed verdict (a failed one matches nothing).
        labels: dimension -> label; pairwise labels as "A" / "B" / "tie" (any case) or 1 / 2 / 0, pointwise
            labels as numbers (equal up to float tolerance).

    Returns:
        dimension -> whether the verdict has that dimension and it equals the label.
    """
    out = {}
    for dim, label in labels.items():
        want = _label_value(label, verdict.kind)
        got = verdict.verdicts.get(dim) if verdict.ok else None
        if got is None:
            out[dim] = False
        elif verdict.kind == "pairwise":
            out[dim] = got == want
        else:
            out[dim] = math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    return out
