"""GRPO rewards for the tool-using judge, in TRL's calling convention, and the `REWARD_FNS` registry.

    mmreward train grpo --config launch/configs/tiny_cpu/grpo.yaml --reward_fns "[verdict_accuracy, strict_format]"
    rewards = REWARD_FNS["verdict_accuracy"](completions, record=records)      # one float per completion
    partial(verdict_accuracy, unparsable=0.0)   # UnifiedReward-Think's {1, 0} instead of VR-Thinker's {1, 0, -1}

Every reward is `fn(completions, record, **kwargs) -> list[float | None]`. `completions` are conversations (TRL's
conversational completions, or `Trajectory.messages` of our loop): assistant turns, tool messages after each
call, and the final assistant turn that holds the verdict. `record` is the dataset column of records (JSON strings
or dicts, mmreward schema). TRL also passes `completion_ids`, the other dataset columns (`template`: the judge
template of each prompt) and its own extras; a reward ignores what it does not use. None means "no label here":
TRL turns it into NaN and leaves it out of the sum.

TRL's response parser is lossy: it moves `<think>` to `reasoning_content`, drops text before it and reorders
blocks, so "junk<think>…" or an answer written before the reasoning would look well-formed. Bind the tokenizer
(`partial(fn, tokenizer=tok, family=family)`, as `train.grpo` does) and the format and verdict checks read the raw
generated text of each turn, decoded from `completion_ids`, split at the family's turn markers (and with the
template's generation prefill, e.g. Qwen3.5's `<think>\n`, put back in front of the first turn); without it they
read the turn rebuilt from the message, its tool calls in the family's format.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence

from mmreward.judge import Verdict, format_ok, parse_verdict, verdict_matches
from mmreward.prompts import JUDGE_DIMENSIONS

# A tool message that reports a failure: our loop writes "Error: …"; TRL stores `str({"error": …})`.
_TRL_ERROR = re.compile(r"""^\{\s*["']error["']\s*:""")


# --- reading a completion -------------------------------------------------------------------------------------

def _text(content) -> str:
    """The text of a message's content: a string, or the text parts of a content list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content
                       if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str))
    return ""


def message_text(message: dict, tool_format: str = "hermes") -> str:
    """An assistant message as the model wrote it, as far as the message tells.

    TRL keeps the reasoning in `reasoning_content` and the calls in `tool_calls`; our loop keeps `<think>` in
    `content` and the calls in `tool_calls`. Both are put back as `<think>…</think>`, the text, then one
    `<tool_call>` block per call in the family's `tool_format` ("hermes" JSON or Qwen3.5 "xml").
    """
    from mmreward.agent.protocol import render_tool_call

    parts = []
    if message.get("reasoning_content") is not None:
        parts.append(f"<think>\n{message['reasoning_content']}\n</think>")
    parts.append(_text(message.get("content")))
    for call in message.get("tool_calls") or []:
        function = call.get("function", call) if isinstance(call, dict) else {}
        function = function if isinstance(function, dict) else {}
        arguments = function.get("arguments", {})
        if tool_format == "xml" and not isinstance(arguments, dict):
            arguments = {"arguments": arguments}  # not an object: rebuilt so that it still reads as a call
        # Arguments nested too deeply (or not JSON at all) give a block that fails every format check.
        parts.append(render_tool_call(function.get("name"), arguments, tool_format))
    return "\n".join(p for p in parts if p)


def turns_from_ids(ids: Sequence[int], tokenizer, family=None) -> list[str]:
    """The raw text of each assistant turn of a multi-turn completion.

    Args:
        ids: the completion's token ids (TRL's `completion_ids`: model turns with the tool results between).
        tokenizer: the policy's tokenizer.
        family: the policy's `Family` (turn markers); None: the Qwen markers every family uses today.

    Returns:
        One string per assistant turn, without its end-of-turn token; a turn cut by the length limit is kept.
        The first turn starts with the template's generation prefill (it is in the prompt, not the completion),
        so every turn reads as the model's whole turn.
    """
    from mmreward.agent.protocol import generation_prefill
    from mmreward.models.families import DEFAULT_FAMILY

    family = family or DEFAULT_FAMILY
    text = generation_prefill(tokenizer) + tokenizer.decode(list(ids), skip_special_tokens=False)
    # The completion starts inside the first assistant turn; later turns follow an assistant header.
    return [segment.split(family.turn_end, 1)[0] for segment in text.split(family.assistant_header)]


def assistant_turns(completion: list[dict], completion_ids: Sequence[int] | None = None,
                    tokenizer=None, family=None) -> list[str]:
    """The text of each assistant turn: raw from `completion_ids` when a tokenizer is given, else rebuilt (tool
    calls in the family's format)."""
    if completion_ids is not None and tokenizer is not None:
        return turns_from_ids(completion_ids, tokenizer, family)
    tool_format = family.tool_format if family is not None else "hermes"
    return [message_text(m, tool_format) for m in completion if m.get("role") == "assistant"]


def verdict_turn(completion: list[dict], turns: list[str]) -> str | None:
    """The final turn's text, or None when the episode ended without one (on a tool call or a tool result)."""
    if not completion or not turns:
        return None
    last = completion[-1]
    if last.get("role") != "assistant" or last.get("tool_calls"):
        return None
    return turns[-1]


def tool_call_count(completion: list[dict]) -> int:
    """Tool calls made in the episode: one tool message answers each call (failed ones included)."""
    return sum(1 for m in completion if m.get("role") == "tool")


def tool_failure_count(completion: list[dict]) -> int:
    """Tool messages that report an error ("Error: …" from our loop, `{"error": …}` from TRL)."""
    failures = 0
    for message in completion:
        if message.get("role") != "tool":
            continue
        text = _text(message.get("content")).lstrip()
        failures += text.startswith("Error:") or bool(_TRL_ERROR.match(text))
    return failures


# --- records and labels -----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _parse_json_record(raw: str):
    from mmreward.data.schema import parse_record

    return parse_record(json.loads(raw))


def _record(obj):
    """A parsed record from a JSON string, a dict or a record (the G completions of a prompt share one)."""
    from mmreward.data.schema import PointwiseRecord, PreferencePair, parse_record

    if isinstance(obj, (PreferencePair, PointwiseRecord)):
        return obj
    return _parse_json_record(obj) if isinstance(obj, str) else parse_record(dict(obj))


def _labels(record, template: str | None) -> tuple[dict, str]:
    """(dimension -> label, kind): a pair's overall label and labelled dimensions, or a pointwise record's
    scores; limited to the dimensions the template asks for when it is known."""
    from mmreward.data.schema import PreferencePair

    if isinstance(record, PreferencePair):
        labels, kind = {**(record.dimensions or {}), "overall": record.label}, "pairwise"
    else:
        labels, kind = dict(record.scores or {}), "pointwise"
    if template is not None:
        asked = set(JUDGE_DIMENSIONS[template])
        labels = {d: v for d, v in labels.items() if d in asked}
    return labels, kind


def _verdict(text: str | None, labels: dict, kind: str, template: str | None) -> Verdict:
    """Parse a final turn against the template's dimensions (or, without a template, the labelled ones)."""
    if text is None:
        return Verdict(ok=False, reason="no final turn", kind=kind)
    dimensions = JUDGE_DIMENSIONS[template] if template is not None else tuple(labels) or ("overall",)
    return parse_verdict(text, dimensions=dimensions, kind=kind)


def _correct(verdict: Verdict, labels: dict, score_tolerance: float) -> dict[str, bool]:
    """Per-dimension correctness; pointwise scores count as correct within `score_tolerance`."""
    if verdict.kind == "pairwise":
        return verdict_matches(verdict, labels)
    out = {}
    for dim, label in labels.items():
        got = verdict.verdicts.get(dim) if verdict.ok else None
        out[dim] = got is not None and math.isfinite(label) and abs(got - float(label)) <= score_tolerance
    return out


def _episodes(completions, record, kwargs):
    """Per completion: (record, template, assistant turn texts)."""
    ids = kwargs.get("completion_ids") or [None] * len(completions)
    templates = kwargs.get("template") or [None] * len(completions)
    tokenizer, family = kwargs.get("tokenizer"), kwargs.get("family")
    for completion, raw, template, cids in zip(completions, record, templates, ids):
        yield completion, _record(raw), template, assistant_turns(completion, cids, tokenizer, family)


# --- rewards ----------------------------------------------------------------------------------------------------

def verdict_accuracy(completions, record, *, wrong: float = 0.0, unparsable: float = -1.0,
                     score_tolerance: float = 0.5, **kwargs) -> list[float | None]:
    """Overall verdict against the label: 1 correct, `wrong` wrong, `unparsable` without a readable verdict.

    The default {1, 0, -1} is VR-Thinker's `acc` (its code: the last `\\boxed{}` vs the overall label, -1 when
    unparsable); UnifiedReward-Think uses {1, 0} (`unparsable=0.0`). Master keys ("Thought process:", ":") and
    episodes that end on a tool call are unparsable. A pointwise overall score is correct within
    `score_tolerance`; a record without an overall label gives None.

    Args:
        completions: conversational completions (see the module docstring).
        record: the records, one per completion.
        wrong, unparsable: the rewards of a wrong and of an unreadable verdict.
        score_tolerance: pointwise only: the largest |score - label| that counts as correct.
        **kwargs: `template`, `completion_ids`, `tokenizer`, `family`; the rest of TRL's kwargs are ignored.

    Returns:
        One reward per completion.
    """
    out = []
    for completion, rec, template, turns in _episodes(completions, record, kwargs):
        labels, kind = _labels(rec, template)
        if "overall" not in labels:
            out.append(None)
            continue
        verdict = _verdict(verdict_turn(completion, turns), labels, kind, template)
        if not verdict.ok:
            out.append(unparsable)
            continue
        out.append(1.0 if _correct(verdict, {"overall": labels["overall"]}, score_tolerance)["overall"] else wrong)
    return out


def dimension_accuracy(completions, record, *, unparsable: float = 0.0, score_tolerance: float = 0.5,
                       **kwargs) -> list[float | None]:
    """Fraction of the labelled dimensions (overall included) the verdict gets right.

    Only dimensions that are both labelled and asked for by the template count (a pair labelled only overall
    scores 0 or 1); an unreadable verdict gives `unparsable`; a record with no label gives None.

    Args:
        completions, record: as in `verdict_accuracy`.
        unparsable: the reward of an unreadable verdict.
        score_tolerance: pointwise only: the largest |score - label| that counts as correct.
        **kwargs: `template`, `completion_ids`, `tokenizer`, `family`; the rest is ignored.

    Returns:
        One reward in [0, 1] (or `unparsable`, or None) per completion.
    """
    out = []
    for completion, rec, template, turns in _episodes(completions, record, kwargs):
        labels, kind = _labels(rec, template)
        if not labels:
            out.append(None)
            continue
        verdict = _verdict(verdict_turn(completion, turns), labels, kind, template)
        if not verdict.ok:
            out.append(unparsable)
            continue
        correct = _correct(verdict, labels, score_tolerance)
        out.append(sum(correct.values()) / len(correct))
    return out


def strict_format(completions, record=None, **kwargs) -> list[float]:
    """1.0 if every turn has the strict shape, else 0.0.

    Every turn but the last is a tool turn (`<think>…</think>` then only `<tool_call>` blocks) and the last is
    the answer turn (`<think>…</think>` then exactly one `<answer>{JSON}</answer>`), each checked with
    `judge.format_ok`. An episode that ends on a tool call or result (turn or length limit) gets 0.

    Args:
        completions: conversational completions.
        record: unused (the format does not depend on the label).
        **kwargs: `completion_ids`, `tokenizer`, `family`; the rest is ignored.

    Returns:
        One reward in {0, 1} per completion.
    """
    del record
    ids = kwargs.get("completion_ids") or [None] * len(completions)
    out = []
    for completion, cids in zip(completions, ids):
        turns = assistant_turns(completion, cids, kwargs.get("tokenizer"), kwargs.get("family"))
        final = verdict_turn(completion, turns)
        ok = final is not None and format_ok(final) and final.rstrip().endswith("</answer>")
        ok = ok and all(format_ok(t) and "<tool_call>" in t for t in turns[:-1])
        out.append(1.0 if ok else 0.0)
    return out


def tool_call_validity(completions, record=None, *, no_calls: float = 0.0, **kwargs) -> list[float]:
    """Fraction of the episode's tool calls that did not come back as errors; `no_calls` when there were none.

    Args:
        completions: conversational completions.
        record: unused.
        no_calls: the reward of an episode without tool calls.
        **kwargs: ignored.

    Returns:
        One reward in [0, 1] (or `no_calls`) per completion.
    """
    del record, kwargs
    out = []
    for completion in completions:
        calls = tool_call_count(completion)
        out.append(no_calls if calls == 0 else 1.0 - tool_failure_count(completion) / calls)
    return out


def vrthinker_tool_bonus(completions, record=None, *, decay_after: int | None = None, decayed_coeff: float = 0.2,
                         trainer_state=None, **kwargs) -> list[float]:
    """VR-Thinker's tool-use bonus (its code): +1.5 if ncall >= 4, -1 if ncall <= 1, else 0.5 * (ncall - 1).

    VR-Thinker scales the bonus by 1, and by 0.2 from step 30 on: reward weight 1 with `decay_after=30`
    reproduces it (TRL passes `trainer_state`). Off by default, so a reward weight alone sets the scale. Its
    group-level curiosity term is `tool_curiosity`.

    Args:
        completions: conversational completions.
        record: unused.
        decay_after: from this global step on the bonus is scaled by `decayed_coeff`; None never decays.
        decayed_coeff: the scale after `decay_after`.
        trainer_state: TRL's `TrainerState` (its `global_step`).
        **kwargs: ignored.

    Returns:
        One reward per completion: ncall 0 or 1 -> -1, 2 -> 0.5, 3 -> 1.0, 4+ -> 1.5 (times the scale).
    """
    del record, kwargs
    step = getattr(trainer_state, "global_step", 0)
    coeff = decayed_coeff if decay_after is not None and step >= decay_after else 1.0
    out = []
    for completion in completions:
        calls = tool_call_count(completion)
        bonus = 1.5 if calls >= 4 else -1.0 if calls <= 1 else 0.5 * (calls - 1)
        out.append(coeff * bonus)
    return out


def evidence_hit(completions, record, *, miss: float = 0.0, **kwargs) -> list[float | None]:
    """1.0 when the episode's tool replies showed the record's deciding evidence, else `miss` (content-aware).

    VR-Thinker pays for calling tools at all (`vrthinker_tool_bonus`); this pays only for calls whose returned
    frames / regions contain the evidence the record's `meta["evidence"]` locates (a time window per video, a
    box per image; `agent.evidence`), in every candidate. Read from the tool messages, so a call counts by what
    it returned. Records without evidence give None (no signal), so it can sit beside verdict and format rewards
    on mixed data.

    Args:
        completions: conversational completions (tool messages carry the replies' text).
        record: the records, one per completion.
        miss: the reward of an episode that did not see the evidence.
        **kwargs: ignored.

    Returns:
        One reward (1.0, `miss` or None) per completion.
    """
    from mmreward.agent.evidence import record_evidence_seen

    del kwargs
    out = []
    for completion, raw in zip(completions, record):
        texts = [_text(m.get("content")) for m in completion if isinstance(m, dict) and m.get("role") == "tool"]
        seen = record_evidence_seen(_record(raw), texts)
        out.append(None if seen is None else 1.0 if seen else miss)
    return out


def tool_curiosity(completions, record, *, threshold: float = 0.3, coeff: float = 0.5, min_calls: int = 1,
                   **kwargs) -> list[float]:
    """Group-level curiosity bonus (Pixel-Reasoner's, which VR-Thinker's curiosity term follows): an episode that
    uses tools earns `coeff * max(threshold - rate, 0)`, where `rate` is the share of its group using tools.

    While few rollouts of a prompt use tools, each that does is paid; once `threshold` of them do, the bonus is
    0, so it cannot be farmed. "Uses tools" is at least `min_calls` tool calls. The group is the completions of
    the same record within this call: TRL passes a process's whole generation batch, which holds whole groups
    on one process; with several processes a group split across them is counted per process.

    Args:
        completions: conversational completions.
        record: the records, one per completion (completions of one prompt share it).
        threshold, coeff: the target tool-use rate and the bonus scale (Pixel-Reasoner: 0.3 and 0.5).
        min_calls: tool calls that count as using tools.
        **kwargs: ignored.

    Returns:
        One reward >= 0 per completion.
    """
    del kwargs
    keys = [raw if isinstance(raw, str) else id(raw) for raw in record]
    uses = [tool_call_count(c) >= min_calls for c in completions]
    groups: dict = {}
    for key, used in zip(keys, uses):
        groups.setdefault(key, []).append(used)
    rate = {key: sum(v) / len(v) for key, v in groups.items()}
    return [coeff * max(threshold - rate[key], 0.0) if used else 0.0 for key, used in zip(keys, uses)]


REWARD_FNS = {
    "verdict_accuracy": verdict_accuracy,
    "dimension_accuracy": dimension_accuracy,
    "strict_format": strict_format,
    "tool_call_validity": tool_call_validity,
    "vrthinker_tool_bonus": vrthinker_tool_bonus,
    "evidence_hit": evidence_hit,
    "tool_curiosity": tool_curiosity,
}
