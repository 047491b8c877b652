"""Judge trajectories for the report: a bounded, JSON-ready view of an episode with its images as thumbnails.

    trace = compact_trace(trajectory, thumbs)      # what samples.jsonl stores per judged sample
    traces = read_trace_file("traces.jsonl", thumbs)   # SFT / RFT trace files, for `mmreward view`

A trace keeps what a person needs to see where a judge went wrong: every message in order, the assistant's
thinking / answer / text split apart, each tool call with its arguments, every image (prompt frames, returned
frames and crops) as a thumbnail path, the images the visual memory window evicted marked as such (with their
pixels when the loop kept them), the finish reason, the verdict and the parse failure. Everything is capped
(characters per text, messages, images), so one runaway episode cannot blow up samples.jsonl. Traces come from
model output and from files: nothing here raises on their content.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

EVICTED = "< No Focus >"  # agent.loop.EVICTED, not imported: the loop imports torch-side tools
MAX_TEXT = 4000
MAX_MESSAGES = 48
MAX_IMAGES = 64
# An unclosed section ends where the next one opens (or at the end of the text).
_SECTION = re.compile(r"<(think|answer)>(.*?)(?:</\1>|(?=<(?:think|answer)>)|$)", re.S)


def _cut(text, limit: int = MAX_TEXT) -> str:
    text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + f" … [{len(text) - limit} more characters]"


def _assistant_parts(text: str) -> list[dict]:
    """An assistant text split into {"think"}, {"answer"} and plain {"text"} parts, in order."""
    parts, pos = [], 0
    for match in _SECTION.finditer(text):
        if text[pos:match.start()].strip():
            parts.append({"text": _cut(text[pos:match.start()].strip())})
        parts.append({match.group(1): _cut(match.group(2).strip())})
        pos = match.end()
    if text[pos:].strip():
        parts.append({"text": _cut(text[pos:].strip())})
    return parts


def _calls(message: dict) -> list[dict]:
    """The message's tool calls as {"name", "arguments" (JSON text)}; odd shapes are shown, not dropped."""
    out = []
    for call in (message.get("tool_calls") or [])[:16]:
        fn = call.get("function", call) if isinstance(call, dict) else {}
        name = fn.get("name") if isinstance(fn, dict) else None
        args = fn.get("arguments") if isinstance(fn, dict) else call
        out.append({"name": _cut(str(name), 200) if name is not None else "?",
                    "arguments": _cut(args if isinstance(args, str) else json.dumps(args, ensure_ascii=False,
                                                                                   default=str), 1000)})
    return out


class _Images:
    """Hands out thumbnails for image placeholders (kept images) and evicted markers, in order, within a cap."""

    def __init__(self, images, evicted, thumbs):
        self.images, self.evicted, self.thumbs = list(images or []), list(evicted or []), thumbs
        self.next_image = self.next_evicted = self.written = 0

    def _src(self, pool: list, index: int) -> str | None:
        if index >= len(pool) or self.written >= MAX_IMAGES or self.thumbs is None:
            return None
        try:
            src = self.thumbs.add(pool[index])
        except (OSError, ValueError, AttributeError, TypeError) as err:  # not an image: say so, keep going
            logger.warning("trace image %d not thumbnailed: %s", index, err)
            return None
        self.written += 1
        return src

    def image(self) -> dict:
        src = self._src(self.images, self.next_image)
        self.next_image += 1
        return {"image": src} if src else {"image": None, "note": "image not kept"}

    def evicted_image(self) -> dict:
        src = self._src(self.evicted, self.next_evicted)
        self.next_evicted += 1
        return {"evicted": src}


def _content_parts(role: str, content, pics: _Images) -> list[dict]:
    if isinstance(content, str):
        return _assistant_parts(content) if role == "assistant" else ([{"text": _cut(content)}] if content else [])
    if not isinstance(content, list):
        return [{"text": _cut(content)}] if content is not None else []
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("image", "video"):
            parts.append(pics.image())
        elif kind == "text" and part.get("text") == EVICTED:
            parts.append(pics.evicted_image())
        elif kind == "text":
            text = part.get("text")
            parts.extend(_assistant_parts(text) if role == "assistant" and isinstance(text, str)
                         else [{"text": _cut(text)}])
        else:
            parts.append({"text": _cut(part)})
    return parts


def trace_from_parts(tid, messages, images, evicted, thumbs, fields: dict) -> dict:
    """The compact trace of one episode given its pieces (see `compact_trace`)."""
    pics = _Images(images, evicted, thumbs)
    messages = messages if isinstance(messages, list) else []
    out = []
    for message in messages[:MAX_MESSAGES]:
        if not isinstance(message, dict):
            out.append({"role": "?", "parts": [{"text": _cut(message)}]})
            continue
        role = str(message.get("role", "?"))[:20]
        entry = {"role": role, "parts": _content_parts(role, message.get("content"), pics)}
        if message.get("tool_calls"):
            entry["calls"] = _calls(message)
        out.append(entry)
    trace = {"id": _cut(str(tid), 200), "messages": out, **fields}
    cut = {"messages": max(0, len(messages) - MAX_MESSAGES),
           "images": max(0, len(pics.images) + len(pics.evicted) - pics.written)}
    if any(cut.values()):
        trace["cut"] = cut
    return trace


def compact_trace(traj, thumbs) -> dict:
    """A `Trajectory` as the report shows it, images written through `thumbs` (a `report_media.Thumbs`).

    Args:
        traj: the episode (messages, images, `evicted_images` when the loop kept them, verdict, ...).
        thumbs: thumbnail store; None keeps the structure without pixels.

    Returns:
        {"id", "messages": [{"role", "parts": [{"text"|"think"|"answer": str} | {"image": src|None} |
        {"evicted": src|None}], "calls"?: [{"name", "arguments"}]}], "turns", "tool_calls", "tool_failures",
        "finish_reason", "verdict", "parse_error", "template", "cut"? (what the caps left out)}.
    """
    meta = traj.meta if isinstance(traj.meta, dict) else {}
    verdict = traj.verdict if isinstance(traj.verdict, dict) else None
    fields = {"turns": traj.turns, "tool_calls": traj.tool_calls, "tool_failures": traj.tool_failures,
              "finish_reason": _cut(str(traj.finish_reason or ""), 100),
              "verdict": {_cut(str(k), 100): _cut(str(v), 100) for k, v in verdict.items()} if verdict else None,
              "parse_error": _cut(traj.parse_error, 1000) if traj.parse_error else None,
              "template": meta.get("template")}
    return trace_from_parts(traj.id, traj.messages, traj.images, getattr(traj, "evicted_images", []), thumbs,
                            fields)


def read_trace_file(path: str | Path, thumbs, *, limit: int | None = None) -> list[dict]:
    """Compact traces of a trajectory JSONL (`data.trajectory.write_trajectories` format: SFT / RFT traces).

    A line that is not a trajectory, or whose images are missing, becomes a trace with an "error" naming the
    line; the rest of the file is still shown.

    Args:
        path: the JSONL file; image paths inside are relative to its folder.
        thumbs: thumbnail store for the report.
        limit: read at most this many lines.

    Returns:
        One trace dict per non-empty line, plus "line" and, when the line carries one, its "label"/"record_id".
    """
    from PIL import Image

    path = Path(path)
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if limit is not None and len(out) >= limit:
                break
            if not line.strip():
                continue
            out.append(_trace_line(path, lineno, line, thumbs, Image))
    return out


def _trace_line(path: Path, lineno: int, line: str, thumbs, image_module) -> dict:
    """One line of a trace file as a compact trace; problems are reported in it, never raised."""
    where = f"{path.name}:{lineno}"
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as err:
        return {"id": where, "line": lineno, "messages": [], "error": f"{where}: not JSON ({err})"[:500]}
    if not isinstance(obj, dict):
        return {"id": where, "line": lineno, "messages": [], "error": f"{where}: not a trajectory object"}
    images, errors = [], []
    for rel in (obj.get("images") or [])[:MAX_IMAGES]:
        try:
            with image_module.open(path.parent / str(rel)) as im:
                images.append(im.convert("RGB"))
        except (OSError, ValueError) as err:
            errors.append(f"image {rel}: {err}")
            images.append(None)
    verdict = obj.get("verdict") if isinstance(obj.get("verdict"), dict) else None
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    fields = {k: obj.get(k) for k in ("turns", "tool_calls", "tool_failures") if isinstance(obj.get(k), int)}
    fields.update(finish_reason=_cut(str(obj.get("finish_reason") or ""), 100),
                  verdict={_cut(str(k), 100): _cut(str(v), 100) for k, v in verdict.items()} if verdict else None,
                  parse_error=_cut(obj["parse_error"], 1000) if obj.get("parse_error") else None,
                  template=_cut(str(meta.get("template")), 100) if meta.get("template") else None, line=lineno)
    trace = trace_from_parts(obj.get("id", where), obj.get("messages"), images, [], thumbs, fields)
    if errors:
        trace["error"] = f"{where}: " + "; ".join(errors)[:1000]
    return trace
