"""The multi-turn agent loop: generate, parse tool calls, run tools, append results, repeat until a verdict.

    trajs = run_episodes(generate_fn, envs, conversations, max_turns=4, memory_window=1)

`generate_fn(conversations, images) -> texts` generates one assistant turn for each active episode (batched);
adapters for HF `generate` and vLLM live in `agent/generate.py`. Tool calls use the model family's own format
(`agent/protocol.py`); malformed calls, unknown tools and bad arguments become tool messages the model can read,
and the episode goes on. The *visual memory window* keeps the images of only the last K turns' tool results in context
(older ones become the text "< No Focus >", as VR-Thinker does); the prompt's own images always stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from mmreward.data.trajectory import Trajectory

logger = logging.getLogger(__name__)

EVICTED = "< No Focus >"
# Tool calls run per assistant turn: VR-Thinker-style judges make 1-3; a thousand would decode for minutes.
MAX_TOOL_CALLS = 8
GenerateFn = Callable[[list[list[dict]], list[list]], list[str]]


@dataclass
class _Episode:
    """Mutable state of one running episode."""

    traj: Trajectory
    env: object
    messages: list[dict]
    images: list
    done: bool = False


def _count_images(messages: list[dict]) -> int:
    return sum(1 for m in messages if isinstance(m.get("content"), list)
               for part in m["content"] if part.get("type") == "image")


def apply_memory_window(messages: list[dict], images: list, window: int) -> tuple[list[dict], list]:
    """Keep the images of the tool results of the last `window` turns; older ones become a placeholder.

    A turn's tool results (every tool message after one assistant message) count as one image set, so a turn that
    looked at both videos keeps both in view (VR-Thinker: window 1 = the latest turn's frames).

    Args:
        messages: the conversation (image parts are `{"type": "image"}` placeholders).
        images: PIL images in placeholder order.
        window: how many turns' tool-returned image sets stay visible (None or < 0: all).

    Returns:
        (messages, images) with evicted images replaced by the text "< No Focus >" and removed from `images`.
    """
    if window is None or window < 0:
        return messages, images
    turn_of, turn = {}, -1
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            turn = i
        elif message["role"] == "tool" and isinstance(message.get("content"), list) and any(
                p.get("type") == "image" for p in message["content"]):
            turn_of[i] = turn
    turns = list(dict.fromkeys(turn_of.values()))
    keep_turns = set(turns[len(turns) - window:]) if window else set()
    evict = {i for i, t in turn_of.items() if t not in keep_turns}
    out_messages, out_images, cursor = [], [], 0
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            out_messages.append(message)
            continue
        parts = []
        for part in content:
            if part.get("type") == "image":
                if i in evict:
                    parts.append({"type": "text", "text": EVICTED})
                else:
                    parts.append(part)
                    out_images.append(images[cursor])
                cursor += 1
            else:
                parts.append(part)
        out_messages.append({**message, "content": parts})
    return out_messages, out_images


def _visible_images(episode: _Episode, memory_window: int | None) -> int:
    return _count_images(apply_memory_window(episode.messages, episode.images, memory_window)[0])


def _tool_turn(episode: _Episode, calls, errors, *, max_calls: int, max_images: int,
               memory_window: int | None) -> None:
    """Run the turn's tool calls (and report its malformed ones) as tool messages, within the turn's limits.

    Limits are checked before each call runs: at most `max_calls` calls per turn (and as many malformed-call
    reports), and no call once the images in context exceed `max_images`. Calls refused by a limit are counted
    as failed calls and answered by one tool message that says so (one per turn, not one per call, so a turn of
    a thousand calls cannot flood the context).
    """
    from mmreward.agent.protocol import tool_message
    from mmreward.agent.tools import ToolError

    for error in errors[:max_calls]:
        episode.messages.append(tool_message(f"Error: {error}"))
    episode.traj.tool_failures += len(errors)
    notes = []
    if len(errors) > max_calls:
        notes.append(f"{len(errors) - max_calls} more malformed tool calls were not reported")
    refused = 0
    for i, call in enumerate(calls):
        if i >= max_calls:
            refused = len(calls) - i
            notes.append(f"{refused} tool calls beyond the limit of {max_calls} per turn were not run")
            break
        if _visible_images(episode, memory_window) > max_images:
            refused = len(calls) - i
            notes.append(f"{refused} tool calls were not run: the episode has reached its limit of "
                         f"{max_images} images in context")
            episode.traj.finish_reason, episode.done = "max_images", True
            break
        episode.traj.tool_calls += 1
        try:
            result = episode.env.call(call.name, call.arguments)
        except ToolError as err:
            episode.traj.tool_failures += 1
            episode.messages.append(tool_message(f"Error: {err}"))
            continue
        episode.messages.append(tool_message(result.text, result.images))
        episode.images.extend(result.images)
    episode.traj.tool_calls += refused
    episode.traj.tool_failures += refused
    if notes:
        episode.messages.append(tool_message(f"Error: {'; '.join(notes)}. Make fewer tool calls per turn."))


def _finish(episode: _Episode, text: str, dimensions, kind: str, answers=None) -> None:
    from mmreward.judge import parse_verdict

    verdict = parse_verdict(text, dimensions=dimensions, kind=kind, answers=answers)
    episode.traj.verdict = verdict.verdicts if verdict.ok else None
    episode.traj.parse_error = None if verdict.ok else verdict.reason
    episode.traj.finish_reason = "answer"
    episode.done = True


def run_episodes(generate_fn: GenerateFn, envs: list, conversations: list[list[dict]],
                 images: list[list] | None = None, *, ids: list[str] | None = None, max_turns: int = 4,
                 max_images: int = 64, max_tool_calls: int = MAX_TOOL_CALLS, memory_window: int | None = 1,
                 dimensions=("overall",), kind: str = "pairwise", answers=None) -> list[Trajectory]:
    """Run several episodes to a verdict or a limit, one batched `generate_fn` call per turn.

    Args:
        generate_fn: (conversations, images) -> one assistant text per conversation.
        envs: one environment per episode with `call(name, arguments) -> ToolResult` (e.g. `JudgeEnv`).
        conversations: the starting messages of each episode (system + user with media placeholders).
        images: PIL images of each conversation's placeholders, in order.
        ids: episode ids (default "0", "1", …).
        max_turns: assistant turns per episode.
        max_images: images allowed in context; once a tool result exceeds it, the turn's remaining calls are
            not run and the episode stops ("max_images").
        max_tool_calls: tool calls run per turn (and malformed calls reported); the excess are not run, and
            one tool message says so.
        memory_window: tool-returned image sets kept visible (VR-Thinker: 1); None keeps all.
        dimensions, kind: what the final verdict must contain (`judge.parse_verdict`).
        answers: phrase -> verdict for templates that answer with a fixed phrase (`prompts.JUDGE_ANSWERS`).

    Returns:
        One `Trajectory` per episode (token ids are filled by `tokenize_trajectory`). Generated text is hostile
        input: whatever it holds, its episode ends with a verdict, a parse failure or a limit, never an exception.
    """
    from mmreward.agent.protocol import format_tool_calls, parse_tool_calls
    from mmreward.agent.untrusted import clean_text

    if max_tool_calls < 1:
        from mmreward.errors import ConfigError

        raise ConfigError(f"max_tool_calls (tool calls run per turn) must be >= 1, got {max_tool_calls}")

    images = images or [[] for _ in conversations]
    episodes = [_Episode(Trajectory(id=(ids or [str(i) for i in range(len(conversations))])[i], messages=[]),
                         env, list(msgs), list(imgs))
                for i, (env, msgs, imgs) in enumerate(zip(envs, conversations, images))]
    for _ in range(max_turns):
        active = [e for e in episodes if not e.done]
        if not active:
            break
        views = [apply_memory_window(e.messages, e.images, memory_window) for e in active]
        texts = generate_fn([v[0] for v in views], [v[1] for v in views])
        for episode, text in zip(active, texts):
            episode.traj.turns += 1
            # Lone surrogates would break the tokenizer at the next turn and the trajectory writer.
            text = clean_text(text)
            calls, errors, content = parse_tool_calls(text)
            message = {"role": "assistant", "content": content}
            if calls:
                message["tool_calls"] = format_tool_calls(calls)
            episode.messages.append(message)
            if not calls and not errors:
                _finish(episode, text, dimensions, kind, answers)
                continue
            _tool_turn(episode, calls, errors, max_calls=max_tool_calls, max_images=max_images,
                       memory_window=memory_window)
            if not episode.done and _visible_images(episode, memory_window) > max_images:
                episode.traj.finish_reason, episode.done = "max_images", True
    for episode in episodes:
        if not episode.done:
            episode.traj.finish_reason = "max_turns"
        episode.traj.messages, episode.traj.images = apply_memory_window(episode.messages, episode.images,
                                                                         memory_window)
        episode.traj.evicted_images = _evicted(episode.images, episode.traj.images)
    return [e.traj for e in episodes]


def _evicted(images: list, kept: list) -> list:
    """The images not in `kept` (a subsequence of `images`, as `apply_memory_window` returns it), in order."""
    out, j = [], 0
    for image in images:
        if j < len(kept) and image is kept[j]:
            j += 1
        else:
            out.append(image)
    return out


def run_episode(generate_fn: GenerateFn, env, messages: list[dict], images: list | None = None,
                **kwargs) -> Trajectory:
    """One episode (see `run_episodes`)."""
    return run_episodes(generate_fn, [env], [messages], [images or []], **kwargs)[0]
