"""A reward function for TRL's `GRPOTrainer(reward_funcs=[...])`, scored in process or by `mmreward serve`.

    reward = MMRewardFunc(load_scorer("ckpt"))                     # or MMRewardFunc("http://rm:8000")
    trainer = GRPOTrainer(model=policy, reward_funcs=[reward], train_dataset=ds, ...)

TRL calls ``reward(prompts=..., completions=..., completion_ids=..., **columns)`` with every dataset column as a
keyword (trl/trainer/grpo_trainer.py `_calculate_rewards`): a vision dataset's ``images`` (or ``image``) column
holds the prompt's images, which become the record's media. Each (prompt, completion) is one pointwise record:
the user text of the prompt, the completion as the response. A record that fails gets ``None``, which TRL turns
into NaN and leaves out of the group's statistics, so one bad sample never stops the step.
"""

from __future__ import annotations

import logging
from typing import Any

from mmreward.integrations.backend import make_backend
from mmreward.integrations.client import media_item

logger = logging.getLogger(__name__)


def _text(content: Any) -> str:
    """The text of a message content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def prompt_text(prompt: Any) -> tuple[str, str | None]:
    """(user text, system text) of a TRL prompt: a string, or a conversation (the last user turn)."""
    if isinstance(prompt, str):
        return prompt, None
    users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
    systems = [m for m in prompt if isinstance(m, dict) and m.get("role") == "system"]
    return (_text(users[-1]["content"]) if users else "", _text(systems[0]["content"]) if systems else None)


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or the assistant messages of a conversation."""
    if isinstance(completion, str):
        return completion
    return "\n".join(_text(m.get("content")) for m in completion if isinstance(m, dict)
                     and m.get("role", "assistant") == "assistant")


class MMRewardFunc:
    """GRPO reward from a multimodal reward model.

    Args:
        scorer_or_url: a loaded scorer, or the base URL of `mmreward serve`.
        dimension: reward with this dimension instead of the overall score.
        **backend_kwargs: batch_size / num_workers (local) or timeout / retries (remote).
    """

    def __init__(self, scorer_or_url: Any, *, dimension: str | None = None, **backend_kwargs):
        self.backend = make_backend(scorer_or_url, **backend_kwargs)
        self.dimension = dimension
        # TRL logs each reward function under its __name__ (rewards/<name>/mean).
        self.__name__ = f"mmreward_{dimension}" if dimension else "mmreward"

    def records(self, prompts: list, completions: list, images: list | None = None) -> list[dict]:
        """The pointwise record dicts for a batch of (prompt, completion) and the prompts' images."""
        out = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions)):
            user, system = prompt_text(prompt)
            row_images = images[i] if images is not None else None
            if row_images is not None and not isinstance(row_images, (list, tuple)):
                row_images = [row_images]
            media = [media_item(img) for img in row_images or [] if img is not None]
            out.append({"id": str(i), "prompt": user, "system": system, "media": media,
                        "response": completion_text(completion)})
        return out

    def __call__(self, prompts: list, completions: list, images: list | None = None, image: list | None = None,
                 **kwargs) -> list[float | None]:
        rows = self.backend.score(self.records(prompts, completions, images if images is not None else image))
        rewards: list[float | None] = []
        for row in rows:
            if row.get("error"):
                logger.warning("mmreward reward for completion %s failed: %s", row["id"], row["error"])
                rewards.append(None)
            else:
                rewards.append(row["scores"][self.dimension] if self.dimension else row["score"])
        return rewards
