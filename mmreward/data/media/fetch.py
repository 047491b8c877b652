"""Bounded reads of in-memory media: URL downloads with a total deadline and a size cap, and base64
payloads measured before they are decoded.

    set_media_limits(max_bytes=50 << 20, url_deadline_s=20)     # process-wide
    MMREWARD_MEDIA_MAX_BYTES=5e7 MMREWARD_URL_DEADLINE_S=20     # the same, read at import (workers too)

Why a total deadline: a socket timeout bounds each read, not the download, so a server trickling one
byte a second keeps a worker busy for ever. Why a size cap: a URL or a base64 string in a JSONL line or
an HTTP request is untrusted; without a cap one record can take a host's memory.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace

from mmreward.data.media.sampling import MediaError

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 200 << 20  # 200 MiB: a few minutes of 1080p H.264
DEFAULT_URL_DEADLINE_S = 60.0
_CHUNK = 1 << 16


@dataclass(frozen=True)
class MediaLimits:
    """Caps on in-memory media.

    Attributes:
        max_bytes: largest download / bytes / decoded base64 payload accepted.
        url_deadline_s: wall-clock limit for one download, connection and headers included.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    url_deadline_s: float = DEFAULT_URL_DEADLINE_S


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        log.warning("ignoring %s=%r (not a positive number); using %g", name, raw, default)
        return default
    return value


_LIMITS = MediaLimits(
    max_bytes=int(_env_number("MMREWARD_MEDIA_MAX_BYTES", DEFAULT_MAX_BYTES)),
    url_deadline_s=_env_number("MMREWARD_URL_DEADLINE_S", DEFAULT_URL_DEADLINE_S),
)


def limits() -> MediaLimits:
    """The limits in force in this process."""
    return _LIMITS


def set_media_limits(max_bytes: int | None = None, url_deadline_s: float | None = None) -> MediaLimits:
    """Change the process-wide limits (None keeps a value).

    Args:
        max_bytes: largest download / bytes / base64 payload, in bytes (> 0).
        url_deadline_s: total seconds allowed for one download (> 0).

    Returns:
        The previous limits (pass their fields back to restore them).

    Raises:
        ValueError: a limit that is not positive.
    """
    global _LIMITS
    for name, value in (("max_bytes", max_bytes), ("url_deadline_s", url_deadline_s)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    previous = _LIMITS
    changes = {"max_bytes": max_bytes, "url_deadline_s": url_deadline_s}
    _LIMITS = replace(_LIMITS, **{k: v for k, v in changes.items() if v is not None})
    return previous


def read_base64(payload: str, label: str) -> bytes:
    """Decode base64 (standard or URL-safe alphabet, padding optional), refusing oversize payloads
    before decoding them.

    Args:
        payload: the base64 text (whitespace allowed).
        label: names the source in error messages.

    Returns:
        The decoded bytes.

    Raises:
        MediaError: invalid base64, or a payload that decodes to more than ``max_bytes``.
    """
    cap = _LIMITS.max_bytes
    if len(payload) // 4 * 3 > cap + 3:  # whitespace only makes the decoded size smaller
        raise MediaError(
            f"{label}: base64 payload of {len(payload)} chars exceeds the {cap}-byte media limit "
            "(set_media_limits / MMREWARD_MEDIA_MAX_BYTES)"
        )
    try:
        text = "".join(payload.split())
        data = base64.b64decode(
            text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None
        )
    except (binascii.Error, ValueError) as e:
        raise MediaError(f"{label}: invalid base64 ({e})") from e
    if len(data) > cap:
        raise MediaError(f"{label}: decoded media of {len(data)} bytes exceeds the {cap}-byte limit")
    return data


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only: urllib would also follow one to ftp://, outside these limits."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not newurl.lower().startswith(("http://", "https://")):
            raise MediaError(f"{req.full_url}: redirect to {newurl[:200]} refused (only http and https)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def download(url: str) -> bytes:
    """GET ``url`` within ``url_deadline_s`` seconds in total and at most ``max_bytes`` bytes.

    Args:
        url: an http(s) URL; redirects are followed to http(s) URLs only.

    Returns:
        The response body.

    Raises:
        MediaError: connection / HTTP failure, deadline passed, or body larger than the limit.
    """
    lim = _LIMITS
    deadline = time.monotonic() + lim.url_deadline_s
    try:
        with _OPENER.open(url, timeout=lim.url_deadline_s) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.strip().isdigit() and int(declared) > lim.max_bytes:
                raise MediaError(
                    f"{url}: download of {int(declared)} bytes exceeds the {lim.max_bytes}-byte media limit"
                )
            return _read_bounded(url, response, deadline, lim)
    except MediaError:
        raise
    except TimeoutError as e:
        raise MediaError(f"{url}: download exceeded the {lim.url_deadline_s:g} s deadline") from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):  # connect timeout, wrapped by urllib
            raise MediaError(f"{url}: download exceeded the {lim.url_deadline_s:g} s deadline") from e
        raise MediaError(f"{url}: download failed ({e})") from e
    except (OSError, http.client.HTTPException, ValueError) as e:  # URLError, HTTPError, resets, bad URLs
        raise MediaError(f"{url}: download failed ({e})") from e


def _read_bounded(url: str, response, deadline: float, lim: MediaLimits) -> bytes:
    """Body of an open response, read as it arrives, within the deadline and the size cap."""
    sock = getattr(getattr(response.fp, "raw", None), "_sock", None)
    parts, received = [], 0
    while True:
        remaining = deadline - time.monotonic()
        late = MediaError(
            f"{url}: download exceeded the {lim.url_deadline_s:g} s deadline ({received} bytes received)"
        )
        if remaining <= 0:
            raise late
        if sock is not None:
            sock.settimeout(remaining)  # a stalled server cannot hold a read past the deadline
        try:
            chunk = response.read1(_CHUNK)  # whatever arrived: a trickle cannot fill a big buffer
        except TimeoutError as e:
            raise late from e
        if not chunk:
            return b"".join(parts)
        received += len(chunk)
        if received > lim.max_bytes:
            raise MediaError(f"{url}: download exceeds the {lim.max_bytes}-byte media limit")
        parts.append(chunk)
