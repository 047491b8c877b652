"""Trajectories: multi-turn, tool-using episodes of a judge, with token ids and an assistant-only loss mask.

A trajectory is what the agent loop returns and what SFT / rejection sampling / GRPO consume. Messages use the
chat-template form (`{"role", "content": str | [parts]}`; image parts are `{"type": "image"}` placeholders whose
pixels live in `images`, in placeholder order). On disk (JSONL) the images are PNG files next to the JSONL,
referenced by relative path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Trajectory:
    """One episode."""

    id: str
    # Chat messages: system/user prompt, assistant turns (content + tool_calls), tool results.
    messages: list[dict]
    # PIL images for the image placeholders of `messages`, in order (prompt images and tool-returned frames).
    images: list = field(default_factory=list)
    # Token ids of the rendered conversation and the loss mask (1 on assistant-generated tokens only).
    input_ids: list[int] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    tool_calls: int = 0
    tool_failures: int = 0
    turns: int = 0
    # Why the episode ended: "answer", "max_turns", "max_images", "max_length" or "error".
    finish_reason: str = ""
    # Parsed final verdict ({dimension: value}) or None; the parse failure reason when it failed.
    verdict: dict[str, Any] | None = None
    parse_error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # PIL images the visual memory window replaced by "< No Focus >", in placeholder order (for reports that
    # show what was evicted); not written to JSONL, never trained on.
    evicted_images: list = field(default_factory=list, repr=False)

    def to_dict(self, image_paths: list[str] | None = None) -> dict:
        """JSON-ready dict; images are given as paths (see `write_trajectories`)."""
        return {"id": self.id, "messages": self.messages, "images": image_paths or [],
                "input_ids": self.input_ids, "loss_mask": self.loss_mask, "tool_calls": self.tool_calls,
                "tool_failures": self.tool_failures, "turns": self.turns, "finish_reason": self.finish_reason,
                "verdict": self.verdict, "parse_error": self.parse_error, "meta": self.meta}


def write_trajectories(path: str | Path, trajectories: list[Trajectory]) -> Path:
    """Write trajectories as JSONL; images go to `<stem>_images/<id>_<k>.png` next to the file.

    Returns:
        The JSONL path.
    """
    path = Path(path)
    image_dir = path.with_name(path.stem + "_images")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for traj in trajectories:
            names = []
            for k, image in enumerate(traj.images):
                image_dir.mkdir(parents=True, exist_ok=True)
                safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in traj.id)
                target = image_dir / f"{safe}_{k}.png"
                image.save(target)
                names.append(str(target.relative_to(path.parent)))
            f.write(json.dumps(traj.to_dict(names), ensure_ascii=False) + "\n")
    return path


def read_trajectories(path: str | Path) -> list[Trajectory]:
    """Read trajectories written by `write_trajectories` (images loaded as PIL, RGB)."""
    from PIL import Image

    path = Path(path)
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                images = [Image.open(path.parent / p).convert("RGB") for p in obj.pop("images")]
                out.append(Trajectory(images=images, **obj))
            except (json.JSONDecodeError, TypeError, OSError) as err:
                raise ValueError(f"{path.name}:{lineno}: not a trajectory ({err})") from err
    return out
