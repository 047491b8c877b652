"""TRL preference rows (``prompt``/``chosen``/``rejected``/``images``) to canonical pair dicts.

A row's ``chosen`` is candidate A, so the pair's label is "A"; conversational rows (lists of chat messages)
give their user text as the prompt and the assistant text as each candidate. `parse_record` validates the
result like any canonical record.
"""

from __future__ import annotations

from typing import Any

from mmreward.data.records.fields import fail, required, show

# Keys of a TRL row that map onto our fields; any other column is kept in meta rather than dropped.
TRL_KEYS = ("id", "prompt", "system", "chosen", "rejected", "images", "image", "label", "margin", "meta")


def _content_text(content: Any, field: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        fail(field, f"must be a string or a list of parts, got {show(content)}")
    texts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        # A bare {"type": "image"} is a placeholder for the row's "images"; one that carries its own image
        # (or any other part) would be lost, so it is an error rather than skipped.
        elif kind != "image" or any(v is not None for k, v in part.items() if k != "type"):
            fail(f"{field}[{i}]", f'must be a text part or an {{"type": "image"}} placeholder, got {show(part)}')
    return "\n".join(texts)


def _split_messages(messages: list[Any], field: str) -> dict[str, str]:
    """Map role -> its messages' text joined by newlines."""
    texts: dict[str, list[str]] = {}
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            fail(f"{field}[{i}]", f"must be a chat message with a role, got {show(msg)}")
        texts.setdefault(msg["role"], []).append(_content_text(msg.get("content"), f"{field}[{i}].content"))
    return {role: "\n".join(parts) for role, parts in texts.items()}


def _trl_images(obj: dict[str, Any]) -> list[Any]:
    images = obj.get("images")
    if images is None:
        images = [] if obj.get("image") is None else [obj["image"]]
    if not isinstance(images, list):
        fail("images", f"must be a list, got {show(images)}")
    media = []
    for i, img in enumerate(images):
        if isinstance(img, str):
            media.append({"type": "image", "path": img})
        elif isinstance(img, dict):
            media.append({"type": "image", **{k: v for k, v in img.items() if v is not None}})
        else:
            fail(f"images[{i}]", f"must be a path or a media object, got {show(img)}")
    return media


def from_trl(obj: dict[str, Any], default_id: str | None) -> dict[str, Any]:
    """Return the canonical pair dict of a TRL row (``prompt``/``chosen``/``rejected``/``images``), label "A".

    Args:
        obj: the row; conversational (lists of chat messages) or plain text. Unknown columns go to ``meta``.
        default_id: id for a row without one.

    Returns:
        The canonical dict, to be validated like any other (``parse_record``). Raises RecordError naming the
        field for a row that cannot be one pair.
    """
    label = obj.get("label")
    if label is not None and label != "A":
        # "chosen" is candidate A by definition, so any other label contradicts the row; silently keeping "A"
        # would train on the opposite preference from the one the row states.
        fail("label", f'conflicts with chosen/rejected: a TRL row\'s "chosen" is candidate A, so "label" must '
                       f'be "A" or absent, got {show(label)}; swap chosen and rejected instead')
    prompt, system = obj.get("prompt"), obj.get("system")
    if isinstance(prompt, list):
        roles = _split_messages(prompt, "prompt")
        if set(roles) - {"system", "user"}:
            fail("prompt", f"may only hold system and user messages, got roles {', '.join(roles)}")
        prompt, system = roles.get("user", ""), roles.get("system", system)
    candidates = {}
    for key, slot in (("chosen", "a"), ("rejected", "b")):
        value = required(obj, key)
        if isinstance(value, list):
            roles = _split_messages(value, key)
            if prompt is None and "user" in roles:  # TRL "implicit prompt": the conversation carries it
                prompt, system = roles["user"], roles.get("system", system)
            if "assistant" not in roles:
                fail(key, "has no assistant message")
            value = roles["assistant"]
        elif not isinstance(value, str):
            fail(key, f"must be a string or a list of chat messages, got {show(value)}")
        candidates[slot] = {"text": value, "media": []}
    extras = {k: v for k, v in obj.items() if k not in TRL_KEYS}
    meta = obj.get("meta")
    if extras and (meta is None or isinstance(meta, dict)):
        meta = {**(meta or {}), **extras}
    return {
        "id": obj["id"] if obj.get("id") is not None else default_id, "prompt": prompt, "system": system,
        "media": _trl_images(obj), "a": candidates["a"], "b": candidates["b"], "label": "A",
        "margin": obj.get("margin"), "meta": meta,
    }
