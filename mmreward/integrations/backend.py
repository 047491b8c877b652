"""One interface for the adapters: score record dicts in process (a loaded scorer) or on a server (a URL).

Both accept the server's request form — record dicts whose media may be ``bytes``, ``path`` or raw ``npy`` arrays
(`client.media_item`) — and answer result dicts like `POST /score` does, so an adapter behaves the same either way.
Raw arrays become in-memory media items (``MediaItem(array=...)``), in process as on the server. Adapters that
hold tensors (generator RL) skip the request form in process and call ``score_media`` on `LocalBackend.scorer`.
"""

from __future__ import annotations

from typing import Any


class LocalBackend:
    """Scores with a scorer object in this process (`score_records`, failed records carry ``error``)."""

    def __init__(self, scorer, *, batch_size: int = 16, num_workers: int = 0):
        self.scorer, self.batch_size, self.num_workers = scorer, batch_size, num_workers
        self.dimensions = list(scorer.dimensions)
        if hasattr(scorer, "eval"):
            scorer.eval()

    def score(self, records: list[dict]) -> list[dict]:
        from mmreward.serving.app import result_rows
        from mmreward.serving.inputs import MediaPolicy, parse_records

        parsed = parse_records(records, MediaPolicy(trusted=True), max_records=len(records) or 1)
        if hasattr(self.scorer, "plan"):
            from mmreward.scoring import score_records

            results = score_records(self.scorer, parsed, batch_size=self.batch_size, on_error="skip",
                                    num_workers=self.num_workers, progress=False)
        else:
            results = self.scorer.score(parsed, batch_size=self.batch_size, on_error="skip", progress=False)
        return result_rows(results)


class RemoteBackend:
    """Scores on a running `mmreward serve`."""

    def __init__(self, url: str, **client_kwargs):
        from mmreward.integrations.client import RewardClient

        self.client = RewardClient(url, **client_kwargs)
        self.dimensions = list(self.client.health().get("dimensions", []))

    def score(self, records: list[dict]) -> list[dict]:
        return self.client.score(records)


def make_backend(scorer_or_url: Any, **kwargs) -> LocalBackend | RemoteBackend:
    """A `RemoteBackend` for a URL string (``http(s)://…``), a `LocalBackend` for a scorer object.

    Args:
        scorer_or_url: a loaded scorer, or the base URL of `mmreward serve`.
        **kwargs: batch_size / num_workers (local) or timeout / retries (remote).
    """
    if isinstance(scorer_or_url, str):
        if not scorer_or_url.startswith(("http://", "https://")):
            from mmreward.errors import ConfigError

            raise ConfigError(f"{scorer_or_url!r}: give a loaded scorer or the server's http(s):// URL; load a "
                              "checkpoint with mmreward.scoring.load_scorer")
        return RemoteBackend(scorer_or_url, **kwargs)
    return LocalBackend(scorer_or_url, **kwargs)
