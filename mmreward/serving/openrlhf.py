"""OpenRLHF's remote reward-model protocol (`--remote_rm_url http://HOST:PORT/get_reward`).

OpenRLHF (openrlhf/utils/agent.py, `_fetch_rewards_via_http`; openrlhf/cli/serve_rm.py) POSTs

    {"query": [prompt + response as decoded text, special tokens kept], "prompts": [prompt text], "labels": [...]}

and reads ``rewards`` (and ``scores``, ``extra_logs``) from the JSON answer:

    {"rewards": [r0, ...], "scores": [r0, ...], "extra_logs": {"<dimension>": [...], ...}}

Images are not sent: the query is text. A multimodal reward model needs the media, so a label may carry them:
a dict (or its JSON text) with ``media`` in our record schema, e.g. ``{"media": [{"type": "image", "path":
"imgs/17.png"}]}`` (set OpenRLHF's ``--label_key`` to that column). Chat-template markers (Qwen's
``<|im_start|>``…) are stripped so the reward model sees the user text and the response, rendered with its
own template. A record that fails gets ``null`` in ``rewards`` / ``scores`` and its message in ``errors``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mmreward.serving.inputs import RequestError

_USER = re.compile(r"<\|im_start\|>user\n(.*?)(?:<\|im_end\|>|$)", re.S)
_VISION = re.compile(r"<\|vision_start\|>.*?<\|vision_end\|>|<\|(?:image|video)_pad\|>", re.S)
_ASSISTANT = "<|im_start|>assistant\n"
_END = re.compile(r"<\|im_end\|>|<\|endoftext\|>")


def _user_text(prompt: str) -> str:
    turns = _USER.findall(prompt)
    text = turns[-1] if turns else prompt
    return _VISION.sub("", text).strip()


def split_query(query: str, prompt: str | None) -> tuple[str, str]:
    """(user text, response) of an OpenRLHF query: the prompt is its prefix, or the last assistant turn starts it.

    Args:
        query: prompt + response as decoded by OpenRLHF.
        prompt: the prompt text, or None.

    Returns:
        The user text (chat markers and vision placeholders removed) and the response (cut at the end-of-turn).
    """
    if prompt and query.startswith(prompt):
        head, response = prompt, query[len(prompt):]
    elif _ASSISTANT in query:
        head, _, response = query.rpartition(_ASSISTANT)
    else:
        head, response = prompt or "", query
    response = _END.split(response, maxsplit=1)[0].strip()
    return _user_text(head), response


def _strings(body: dict, key: str, n: int | None) -> list | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or (n is not None and len(value) != n):
        want = "a list of strings" if n is None else f"a list of {n} items (one per query)"
        raise RequestError(f"must be {want}", field=key)
    return value


def _label_media(label: Any, i: int) -> list:
    if isinstance(label, str) and label.lstrip().startswith("{"):
        try:
            label = json.loads(label)
        except (ValueError, RecursionError):
            return []
    if isinstance(label, dict) and "media" in label:
        if not isinstance(label["media"], list):
            raise RequestError("media must be a list of media objects", field=f"labels[{i}].media")
        return label["media"]
    return []


def openrlhf_records(body: Any) -> list[dict]:
    """Record dicts (pointwise) for an OpenRLHF request body; raises `RequestError` naming the field."""
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object with 'query'")
    key = "query" if "query" in body else "queries"
    queries = _strings(body, key, None)
    if not queries:
        raise RequestError("must be a non-empty list of strings", field=key)
    prompts = _strings(body, "prompts", len(queries))
    labels = _strings(body, "labels", len(queries))
    records = []
    for i, query in enumerate(queries):
        prompt = None if prompts is None else prompts[i]
        if not isinstance(query, str) or (prompt is not None and not isinstance(prompt, str)):
            raise RequestError("must be a string", field=f"{key}[{i}]" if not isinstance(query, str)
                               else f"prompts[{i}]")
        user, response = split_query(query, prompt)
        media = _label_media(labels[i], i) if labels is not None else []
        records.append({"id": f"query[{i}]", "prompt": user, "response": response, "media": media})
    return records


def openrlhf_response(results: list) -> dict:
    """The JSON answer OpenRLHF reads: rewards, scores, extra_logs (per dimension), errors (if any)."""
    rewards = [r.score if r.error is None else None for r in results]
    dims: dict[str, list] = {}
    for r in results:
        for name in r.scores:
            dims.setdefault(name, [])
    for r in results:
        for name, values in dims.items():
            values.append(r.scores.get(name) if r.error is None else None)
    out: dict[str, Any] = {"rewards": rewards, "scores": rewards, "extra_logs": dims}
    errors = {str(i): r.error for i, r in enumerate(results) if r.error is not None}
    if errors:
        out["errors"] = errors
    return out
