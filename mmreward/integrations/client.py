"""A small HTTP client of `mmreward serve` (httpx, the `serve` extra).

    client = RewardClient("http://127.0.0.1:8000")
    rows = client.score([{"id": "x", "prompt": "a red circle", "media": [media_item(frames, fps=24)],
                          "response": None}])          # [{"id": "x", "score": ..., "scores": {...}}]

Refusals (4xx) raise `ClientError` with the server's message (field and record included); connection errors and
5xx are retried `retries` times with a short backoff, then raised.
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

from mmreward.errors import MMRewardError


class ClientError(MMRewardError, RuntimeError):
    """The reward server refused a request or could not be reached; the message says which and why."""


def media_item(value: Any, *, fps: float | None = None, kind: str | None = None) -> dict:
    """A media object for a request from a PIL image, a numpy array / torch tensor, a path or encoded bytes.

    Args:
        value: PIL image; array or tensor (image (H, W, 3) / (3, H, W), video (T, H, W, 3) / (T, 3, H, W),
            uint8 or float in [0, 1]); a path (str / Path, read server-side under its --media-root); or
            encoded image / video bytes.
        fps: frame rate of a video array (required for videos: the sampling contract needs it).
        kind: "image" or "video" for bytes and paths whose suffix does not say (default: image).

    Returns:
        A media dict in the record schema (``bytes`` / ``path``) or the server's raw-array form (``npy``).
    """
    from mmreward.serving.inputs import encode_npy

    if hasattr(value, "save") and hasattr(value, "mode"):  # PIL image: lossless PNG
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        return {"type": "image", "bytes": base64.b64encode(buf.getvalue()).decode()}
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        video = len(value.shape) == 4
        if video and fps is None:
            raise ValueError("a video array needs fps (the checkpoint's sampling contract depends on it)")
        return {"type": "video" if video else "image", "npy": encode_npy(value), **({"fps": fps} if video else {})}
    if isinstance(value, (bytes, bytearray)):
        return {"type": kind or "image", "bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, (str, Path)):
        from mmreward.scoring_io import VIDEO_SUFFIXES

        guessed = "video" if Path(value).suffix.lower() in VIDEO_SUFFIXES else "image"
        return {"type": kind or guessed, "path": str(value)}
    raise TypeError(f"cannot send a {type(value).__name__} as media; give a PIL image, an array, a path or bytes")


class RewardClient:
    """Scores records on a running `mmreward serve`.

    Args:
        url: the server's base URL.
        timeout: seconds per request (scoring included).
        retries: extra attempts after a connection error or a 5xx.
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", *, timeout: float = 300.0, retries: int = 2):
        import httpx

        self.url = url.rstrip("/")
        self.retries = retries
        self._http = httpx.Client(timeout=timeout)

    def score(self, records: list[dict]) -> list[dict]:
        """One result object per record (``error`` set on those that failed), in order."""
        return self._post("/score", {"records": records})["results"]

    def health(self) -> dict:
        """The server's /health answer (scorer kind, dimensions)."""
        return self._request("GET", "/health", None)

    def _post(self, path: str, body: dict) -> dict:
        return self._request("POST", path, body)

    def _request(self, method: str, path: str, body: dict | None) -> dict:
        import httpx

        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, self.url + path, json=body)
            except httpx.TransportError as err:
                if attempt == self.retries:
                    raise ClientError(f"{self.url}{path}: cannot reach the reward server ({err}); is "
                                      "`mmreward serve` running there?") from None
            else:
                if response.status_code < 500:
                    break
                if attempt == self.retries:
                    raise ClientError(f"{self.url}{path}: server error {response.status_code}: {response.text[:300]}")
            time.sleep(0.5 * 2 ** attempt)
        if response.status_code >= 400:
            try:
                detail = response.json()
            except ValueError:
                detail = {"error": response.text[:300]}
            where = "".join(f" ({k} {detail[k]})" for k in ("field", "id") if detail.get(k) is not None)
            raise ClientError(f"{self.url}{path}: refused with {response.status_code}: {detail.get('error')}{where}")
        return response.json()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
