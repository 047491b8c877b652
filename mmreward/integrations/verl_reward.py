"""A verl `custom_reward_function` that asks `mmreward serve` for rewards (verl's `compute_score` signature).

verl loads this file by path and calls ``compute_score(data_source, solution_str, ground_truth, extra_info,
**reward_kwargs)`` once per response (the default "naive" reward manager), or ``compute_score(data_sources,
solution_strs, ground_truths, extra_infos, **reward_kwargs)`` once per batch with the "batch" reward manager —
use `compute_score_batch` there, one HTTP request per batch. Config::

    custom_reward_function:
      path: /path/to/site-packages/mmreward/integrations/verl_reward.py   # python -c "import mmreward.integrations.verl_reward as m; print(m.__file__)"
      name: compute_score_batch            # with reward_model.reward_manager=batch; compute_score otherwise
      reward_kwargs:
        url: http://rm-host:8000           # or set MMREWARD_URL
    reward_model:
      reward_manager: batch

Each row's ``extra_info`` carries what the text does not: ``prompt`` (the user text; default: empty) and
``media`` (media objects in our record schema, read under the server's --media-root) or ``images`` (paths).
A response that cannot be scored gets ``failed_reward`` (default 0.0: verl needs a number) and a warning.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger(__name__)
_BACKENDS: dict[str, Any] = {}


def _backend(url: str | None):
    from mmreward.integrations.backend import make_backend

    url = url or os.environ.get("MMREWARD_URL")
    if not url:
        from mmreward.errors import ConfigError

        raise ConfigError("no reward server: set custom_reward_function.reward_kwargs.url or MMREWARD_URL")
    if url not in _BACKENDS:  # one client (connection pool) per worker process
        _BACKENDS[url] = make_backend(url)
    return _BACKENDS[url]


def _record(i: int, solution_str: str, extra_info: Any) -> dict:
    from mmreward.integrations.client import media_item

    info = extra_info if isinstance(extra_info, dict) else {}
    media = info.get("media")
    if media is None:
        media = [media_item(x) for x in info.get("images") or []]
    return {"id": str(i), "prompt": str(info.get("prompt") or ""), "media": list(media), "response": solution_str}


def compute_score_batch(data_sources: list, solution_strs: list[str], ground_truths: list, extra_infos: list, *,
                        url: str | None = None, dimension: str | None = None, failed_reward: float = 0.0,
                        **kwargs) -> list[float]:
    """Rewards for a batch of responses (verl's batch reward manager).

    Args:
        data_sources: verl's data_source per row (unused).
        solution_strs: the decoded responses.
        ground_truths: unused (a learned reward model needs no reference).
        extra_infos: per-row dicts with ``prompt`` and ``media`` / ``images``.
        url: the server's base URL (default: $MMREWARD_URL).
        dimension: reward with this dimension instead of the overall score.
        failed_reward: the reward of a response that could not be scored.

    Returns:
        One float per response.
    """
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    rows = _backend(url).score([_record(i, s, e) for i, (s, e) in enumerate(zip(solution_strs, infos))])
    out = []
    for row in rows:
        if row.get("error"):
            logger.warning("mmreward: response %s not scored (%s); reward %s", row["id"], row["error"], failed_reward)
            out.append(float(failed_reward))
        else:
            out.append(float(row["scores"][dimension] if dimension else row["score"]))
    return out


def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None, **kwargs) -> float:
    """The reward of one response (verl's default reward manager); see `compute_score_batch` for the kwargs."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kwargs)[0]
