"""In-process LRU cache of decoded media, bounded by the bytes of the cached frames.

One cache per process (each DataLoader worker has its own). Keys are built by ``media.load_video`` from
the source identity (absolute path + mtime_ns + size, sha1 of in-memory bytes, or a content hash and frame
rate of an in-memory array: ``arrays.array_key``) and the full sampling request, so touching a file,
refilling an array or changing any sampling field is a miss. Thread-safe: a lock guards the table; two
threads missing on the same key at once both decode, and the second store wins.

Cached values are shared, not copied: callers must not modify returned frames in place.

Size: ``MMREWARD_MEDIA_CACHE_BYTES`` (read at import; default 1 GiB; 0 disables) or
``set_media_cache_bytes(n)`` at run time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 1 << 30


def _bytes_from_env() -> int:
    raw = os.environ.get("MMREWARD_MEDIA_CACHE_BYTES")
    if raw is None or raw.strip() == "":
        return DEFAULT_CACHE_BYTES
    try:
        return max(0, int(float(raw)))  # accepts "0", "1073741824" and "2e9"
    except ValueError:
        log.warning(
            "ignoring MMREWARD_MEDIA_CACHE_BYTES=%r (not a number); using %d", raw, DEFAULT_CACHE_BYTES
        )
        return DEFAULT_CACHE_BYTES


class MediaCache:
    """Thread-safe LRU mapping key -> (value, nbytes) holding at most ``max_bytes`` in total."""

    def __init__(self, max_bytes: int):
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        """The cached value (now most recently used) or None; counts a hit or a miss."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> bool:
        """Store a value, evicting least recently used items; an item larger than the cap is not stored.

        Returns:
            Whether the value was stored.
        """
        with self._lock:
            if nbytes > self.max_bytes:
                return False
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._items[key] = (value, nbytes)
            self.bytes += nbytes
            self._evict()
            return True

    def _evict(self) -> None:
        while self.bytes > self.max_bytes and self._items:
            _, (_, nbytes) = self._items.popitem(last=False)
            self.bytes -= nbytes

    def resize(self, max_bytes: int) -> None:
        with self._lock:
            self.max_bytes = max(0, int(max_bytes))
            self._evict()

    def clear(self) -> None:
        """Drop all entries and reset the hit/miss counters."""
        with self._lock:
            self._items.clear()
            self.bytes = self.hits = self.misses = 0

    def info(self) -> dict[str, int]:
        with self._lock:
            return dict(
                hits=self.hits,
                misses=self.misses,
                bytes=self.bytes,
                entries=len(self._items),
                max_bytes=self.max_bytes,
            )


CACHE = MediaCache(_bytes_from_env())


def set_media_cache_bytes(n: int) -> None:
    """Set the cache cap in bytes (0 disables caching); evicts down to the new cap."""
    CACHE.resize(n)


def media_cache_info() -> dict[str, int]:
    """Counters: hits, misses, bytes (frames held), entries, max_bytes."""
    return CACHE.info()


def clear_media_cache() -> None:
    """Empty the cache and reset its counters."""
    CACHE.clear()
