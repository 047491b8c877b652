"""Synthetic tool-use traces: the episodes a good judge would have on labelled pairs, for cold-start SFT.

    traces = synthetic_traces(load_split("/tmp/mmreward-demo-data", "train"), JudgeConfig(), seed=0)
    write_trajectories("traces.jsonl", traces)       # or: mmreward train sft --train_data data_recipes/demo.yaml

Each trace is a real episode of our agent loop (`agent.loop.run_episode`) whose policy is a script: turn 1
reasons in `<think>…</think>` and looks again at the media (`select_frames` on every video, frames spread over
the clip; `crop` on every image); the tools really run in a `JudgeEnv` loaded with the record, so the returned
frames and crops are the real pixels; turn 2 reasons and answers `<answer>{…}</answer>` with the record's
labels. The first turn is exactly `JudgeScorer.conversation(record)`, so SFT teaches the prompt the judge sees at
inference. A record that carries its oracle (`meta["oracle_calls"]`, as the tool-necessity set of
`data.synthetic.tool_task` does) gets teacher traces instead: the calls are the oracle's (the window or box that
holds the deciding evidence, once per video or image), and the reasoning names where the evidence is; when it
also says what each candidate shows there (`meta["evidence"]["seen"]`), the trace calls one candidate per turn
and notes what the call returned ("A at t=1.5s: red.") before the next call and the verdict. With
`both_orders` every pair also gives the trace of its swapped pair (A and B exchanged, labels flipped), so SFT
data has no position bias. The answer holds every dimension of that template (`prompts.JUDGE_DIMENSIONS`); a dimension the
record does not label (`record.dimensions`) takes the record's overall `label`.

Teacher traces (e.g. distilled from a large judge) use the same on-disk format, the Trajectory JSONL of
`data.trajectory.write_trajectories`; SFT reads any file in it. One line per episode::

    {"id": "video-00003",
     "messages": [{"role": "user", "content": [{"type": "text", "text": "Video A (…) (4 of its frames):"},
                                               {"type": "image"}, …, {"type": "text", "text": "<prompt>"}]},
                  {"role": "assistant", "content": "<think>…</think>",
                   "tool_calls": [{"type": "function",
                                   "function": {"name": "select_frames",
                                                "arguments": {"target_frames": [1, 4, 8], "video": 1}}}]},
                  {"role": "tool", "content": [{"type": "image"}, …, {"type": "text", "text": "Video 1: …"}]},
                  {"role": "assistant", "content": "<think>…</think><answer>{\\"overall\\": \\"A\\"}</answer>"}],
     "images": ["traces_images/video-00003_0.png", …],
     "verdict": {"overall": "A"}, "meta": {"record_id": "video-00003", "template": "pairwise_video"},
     "input_ids": [], "loss_mask": [], "tool_calls": 1, "tool_failures": 0, "turns": 2,
     "finish_reason": "answer", "parse_error": null}

`messages` are chat-template messages: image parts are `{"type": "image"}` placeholders, filled in order by
`images` (PNG paths relative to the JSONL: prompt images, then tool-returned ones); an assistant turn's calls are
in `tool_calls` (not in its text); tool results are `role: "tool"` messages. Only assistant turns are trained
on. `input_ids` / `loss_mask` may be empty (SFT re-tokenises with the model's processor); the other fields are
bookkeeping. Images the visual memory window evicted are the text "< No Focus >" and have no entry in `images`.
"""

from __future__ import annotations

import json
import logging
import random
import re

from mmreward.data.trajectory import Trajectory
from mmreward.prompts import JUDGE_DIMENSIONS

logger = logging.getLogger(__name__)

# Wording variants (picked per trace with the seed) so that SFT does not teach one fixed sentence.
_LOOK = (
    "The prompt is \"{prompt}\". I am shown only a few frames at reduced resolution, so I will look again at "
    "the media before I decide.",
    "I need to check how well each candidate matches \"{prompt}\". The first look is coarse; let me inspect "
    "more frames and details.",
    "To compare the candidates against \"{prompt}\" I should look more closely at each of them first.",
)
_DECIDE = {
    "A": ("Having looked again, A matches \"{prompt}\" better than B.",
          "A follows the prompt more faithfully; B deviates from \"{prompt}\".",
          "The closer look confirms it: A is the better match for \"{prompt}\"."),
    "B": ("Having looked again, B matches \"{prompt}\" better than A.",
          "B follows the prompt more faithfully; A deviates from \"{prompt}\".",
          "The closer look confirms it: B is the better match for \"{prompt}\"."),
    "tie": ("Having looked again, A and B match \"{prompt}\" equally well.",
            "Neither candidate is clearly better at showing \"{prompt}\".",
            "The closer look shows no real difference between A and B for \"{prompt}\"."),
}
# Crop boxes of a first close look at an image (centre, then the halves), as fractions of width and height.
_BOXES = ([0.2, 0.2, 0.8, 0.8], [0.0, 0.0, 1.0, 0.5], [0.0, 0.5, 1.0, 1.0], [0.0, 0.0, 0.5, 1.0],
          [0.5, 0.0, 1.0, 1.0])
_FRAME_COUNT = re.compile(r"of its (\d+) frames")


def verdict_for(record, dimensions) -> dict[str, str]:
    """The answer a correct judge gives: the record's label per dimension, its overall label where unlabelled.

    Args:
        record: a labelled `PreferencePair`.
        dimensions: the dimensions the judge template asks for.

    Returns:
        {dimension: "A" | "B" | "tie"}, in `dimensions` order.
    """
    return {dim: record.label if dim == "overall" else record.dimensions.get(dim, record.label)
            for dim in dimensions}


def _call(name: str, **arguments) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def _workspace_size(env, video: int, default: int) -> int:
    """Frames in a video's select_frames workspace (short clips have fewer than `workspace_frames`)."""
    from mmreward.agent.tools import ToolError

    try:
        text = env.call("select_frames", {"target_frames": [1], "video": video}).text
    except ToolError:
        return default
    found = _FRAME_COUNT.search(text)
    return int(found.group(1)) if found else default


def _spread(n: int, k: int) -> list[int]:
    """k frame numbers spread evenly over 1..n, both ends included."""
    k = max(1, min(k, n))
    if k == 1:
        return [(n + 1) // 2]
    return sorted({1 + round(j * (n - 1) / (k - 1)) for j in range(k)})


def _look_calls(record, env, config, rng: random.Random) -> list[str]:
    """One select_frames call per video and one crop per image, in the order the tools number them.

    `env` is a probe: asking it for a frame tells each video's workspace size (8 for an 8-frame clip, not 96),
    and it is not the episode's env, whose image numbering must not count the probe's frames.
    """
    calls, videos, images = [], 0, 0
    for item in record.all_media():
        if item.type in ("video", "frames"):
            videos += 1
            if "select_frames" in config.tools:
                n = _workspace_size(env, videos, config.workspace_frames)
                k = rng.choice((3, 4, 5))
                calls.append(_call("select_frames", target_frames=_spread(n, min(k, config.max_frames_per_call)),
                                   video=videos))
        else:
            images += 1
            if "crop" in config.tools:
                calls.append(_call("crop", box=rng.choice(_BOXES), image=images))
    return calls


# Teacher traces (records with an oracle). When the record also says what each candidate shows at the evidence
# (`meta["evidence"]["seen"]`), the trace looks at one candidate per turn and writes down what the tool returned
# before the next call ("A at t=1.5s: red."), and the verdict follows from those notes: every step reads
# something a few tokens back (the prompt's time, the image just returned, its own notes), which is how a small
# judge learns to use what its tools show. Otherwise both calls go in one turn and the verdict names the place.
# One wording each: the content (where to look, what was seen) is what varies and what the judge must learn.
_ORACLE_LOOK = ("The first look misses {where}. I look at {where} in each candidate.",)
_ORACLE_FIRST = "The prompt says {where}; the first look misses it."
_ORACLE_SEEN = "{slot} {where}: {seen}."
_ORACLE_DECIDE = {"A": ("At {where} only A matches.",), "B": ("At {where} only B matches.",),
                  "tie": ("At {where} A and B look the same.",)}
_ORACLE_VERDICT = {"A": "Only A matches.", "B": "Only B matches.", "tie": "A and B look the same."}


def _where(record) -> str:
    """Where a record's evidence is, in words: the prompt's own (`evidence["phrase"]`, quoted word for word, so a
    judge can copy it from the prompt), else "t=1.5s" for a time, "the top left corner" for a region."""
    evidence = record.meta.get("evidence") or {}
    if isinstance(evidence.get("phrase"), str):
        return evidence["phrase"]
    if isinstance(evidence.get("time"), (int, float)):
        return f"t={evidence['time']:.1f}s"
    if isinstance(evidence.get("region"), str):
        return f"the {evidence['region']} corner"
    return "the detail the prompt names"


def _oracle_calls(record, config) -> list[str] | None:
    """The record's oracle calls (`meta["oracle_calls"]`), once per video (select_frames) or image (crop)
    numbered as the tools number them; None when the record has no oracle."""
    oracle = record.meta.get("oracle_calls") if isinstance(record.meta, dict) else None
    if not oracle:
        return None
    calls, videos, images = [], 0, 0
    for item in record.all_media():
        is_video = item.type in ("video", "frames")
        videos, images = videos + is_video, images + (not is_video)
        for spec in oracle:
            if spec["name"] not in config.tools:
                continue
            if is_video and spec["name"] == "select_frames":
                calls.append(_call("select_frames", **spec["arguments"], video=videos))
            elif not is_video and spec["name"] == "crop":
                calls.append(_call("crop", **spec["arguments"], image=images))
    return calls


def _observed_script(record, calls: list[str], answer: dict) -> list[str] | None:
    """One call per turn, each followed by a note of what it showed, then the verdict (see `_ORACLE_SEEN`).

    Needs a pair with one oracle call per candidate (A's media first) and `meta["evidence"]["seen"]`:
    {"match": what the labelled-better candidate shows at the evidence, "other": what the other one shows}.
    Returns None when the record does not have them (the caller falls back to the two-turn trace).
    """
    seen = (record.meta.get("evidence") or {}).get("seen")
    if (not isinstance(seen, dict) or len(calls) != 2 or record.label not in ("A", "B")
            or not all(isinstance(seen.get(k), str) for k in ("match", "other"))):
        return None
    where = _where(record)
    notes = [_ORACLE_SEEN.format(slot=slot, where=where, seen=seen["match" if slot == record.label else "other"])
             for slot in ("A", "B")]
    return ["<think>" + _ORACLE_FIRST.format(where=where) + "</think>\n" + calls[0],
            "<think>" + notes[0] + "</think>\n" + calls[1],
            "<think>" + notes[1] + " " + _ORACLE_VERDICT[answer["overall"]] + "</think>"
            "<answer>" + json.dumps(answer) + "</answer>"]


def _env(record, config):
    from mmreward.agent.env import JudgeEnv

    env = JudgeEnv(tools=tuple(config.tools), workspace_frames=config.workspace_frames,
                   max_frames_per_call=config.max_frames_per_call, max_pixels=config.tool_max_pixels)
    env.load(record)
    return env


def synthetic_trace(record, judge, rng: random.Random) -> Trajectory:
    """One scripted episode on a labelled pair (see the module docstring).

    Args:
        record: a `PreferencePair` with a `label`.
        judge: a `JudgeScorer` (only its config and `conversation` are used; no model is needed).
        rng: the wording / frame-count RNG.

    Returns:
        The finished `Trajectory` (not tokenised), with `meta` {"record_id", "template", "source": "synthetic"}.
    """
    from mmreward.agent.loop import run_episode
    from mmreward.data.schema import PreferencePair

    if not isinstance(record, PreferencePair) or record.label not in ("A", "B", "tie"):
        raise ValueError(f"{getattr(record, 'id', record)!r}: synthetic traces need labelled preference pairs")
    config = judge.config
    messages, images, template = judge.conversation(record)
    dimensions = JUDGE_DIMENSIONS[template]
    oracle = _oracle_calls(record, config) if config.tools else None
    calls = oracle if oracle is not None else _look_calls(record, _env(record, config), config, rng) \
        if config.tools else []
    answer = verdict_for(record, dimensions)
    script = _observed_script(record, calls, answer) if oracle else None
    if script is None:
        look, decide = (_ORACLE_LOOK, _ORACLE_DECIDE) if oracle else (_LOOK, _DECIDE)
        words = {"prompt": record.prompt, "where": _where(record)}
        if record.meta.get("oracle_calls") and not config.tools:  # tools off: say what is missing, then decide
            decide = {k: (_ORACLE_FIRST + " " + v,) for k, v in _ORACLE_VERDICT.items()}
        final = ("<think>" + rng.choice(decide[answer["overall"]]).format(**words) + "</think>"
                 "<answer>" + json.dumps(answer) + "</answer>")
        script = [final]
        if calls:
            script.insert(0, "<think>" + rng.choice(look).format(**words) + "</think>\n" + "\n".join(calls))
    turns = iter(script)
    kind = "pairwise" if template.startswith("pairwise") else "pointwise"
    traj = run_episode(lambda convs, imgs: [next(turns)], _env(record, config), messages, images,
                       ids=[record.id], max_turns=len(script), max_images=config.max_images,
                       memory_window=config.memory_window, dimensions=dimensions, kind=kind)
    # A scripted episode that does not end in the scripted verdict is a bug here, never a trace to train on.
    if traj.tool_failures or traj.verdict != answer:
        errors = [m["content"][-1]["text"] for m in traj.messages if m["role"] == "tool"]
        raise RuntimeError(f"{record.id}: synthetic trace failed ({traj.finish_reason}; {traj.parse_error}; "
                           f"tool replies {errors})")
    traj.meta.update(record_id=record.id, template=template, source="oracle" if oracle else "synthetic")
    return traj


def both_orders(records) -> list:
    """Each pair followed by its swapped pair (A and B exchanged, labels flipped, id + "~swap"); pointwise
    records once. Training on both orders removes any reward for answering by position."""
    import dataclasses

    from mmreward.data.schema import PreferencePair

    out = []
    for record in records:
        out.append(record)
        if isinstance(record, PreferencePair):
            out.append(dataclasses.replace(record.swapped(), id=f"{record.id}~swap"))
    return out


def synthetic_traces(records, judge_config, *, seed: int = 0, swap: bool = False,
                     no_tool_share: float = 0.0) -> list[Trajectory]:
    """Scripted tool-using judge episodes on labelled pairs (see the module docstring).

    Args:
        records: labelled `PreferencePair`s (image or video generation pairs; response pairs work too).
        judge_config: the `JudgeConfig` whose prompt, tools, frame counts and pixel budgets the traces use.
        seed: varies the wording and the number of frames looked at; the same seed gives the same traces.
        swap: also trace every pair in the other order (`both_orders`), right after it.
        no_tool_share: share of the pairs (drawn with the seed; both orders go together) traced with the tools
            off: no tool schemas, no tool prompt, an answer from the first look. Such traces carry
            `meta["tools"] = []`, which SFT renders without tools, so the judge also answers when run without them.

    Returns:
        One `Trajectory` per record (two with `swap`), in order, with its verdict equal to the record's labels.
    """
    import dataclasses

    from mmreward.agent.judge_scorer import JudgeScorer

    judge = JudgeScorer(None, None, judge_config)
    bare = JudgeScorer(None, None, dataclasses.replace(judge_config, tools=[])) if no_tool_share > 0 else None
    rng, pick = random.Random(seed), random.Random(f"{seed}/no-tools")
    traces = []
    for record in records:
        use = bare if bare is not None and pick.random() < no_tool_share else judge
        for one in (both_orders([record]) if swap else [record]):
            traj = synthetic_trace(one, use, rng)
            if use is bare:
                traj.meta["tools"] = []
            traces.append(traj)
    logger.info("built %d synthetic traces (%d tool calls, %d without tools)", len(traces),
                sum(t.tool_calls for t in traces), sum(t.meta.get("tools") == [] for t in traces))
    return traces
