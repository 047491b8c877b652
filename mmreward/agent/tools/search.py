"""``search``: top-k passages from the episode's search backend (Themis' retrieval tools), offline by default.

    backend = BM25Backend("corpus.jsonl")              # one {"id": ..., "text": ...} object per line
    with use_context(ToolContext(search_backend=backend)):
        search("who painted the mona lisa", k=3)

A backend is any object with ``search(query, k) -> [{"id", "text", "score"}, ...]`` (best first); see
``SearchBackend``. mmreward ships only ``BM25Backend`` (local, via ``bm25s``), so there is no network access unless
you configure it: to search the web, write a class whose ``search`` calls your search API (with its own key,
timeout and rate limit) and returns the same dicts, and pass an instance as ``ToolContext(search_backend=...)``.
The model only ever supplies the query text and k; it cannot choose the backend, a URL or a file.
"""

import json
import re
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mmreward.agent.tools.context import ToolError, current_context
from mmreward.agent.untrusted import shown

__all__ = ["BM25Backend", "SearchBackend", "search", "tokenize"]

MAX_K = 10
MAX_QUERY_CHARS = 500
# Long passages are cut so one call cannot flood the context.
MAX_PASSAGE_CHARS = 1000

_WORD = re.compile(r"[a-z0-9]+")


@runtime_checkable
class SearchBackend(Protocol):
    """What ``search`` queries: returns at most k passages, best first."""

    def search(self, query: str, k: int) -> list[dict[str, Any]]:
        """Top passages for a query.

        Args:
            query: the model's query text.
            k: the most passages to return.

        Returns:
            Up to k dicts ``{"id": str, "text": str, "score": float}``, best first.
        """
        ...


def tokenize(text: str) -> list[str]:
    """Lowercase alphanumeric words: "Mona-Lisa's 2nd" -> ["mona", "lisa", "s", "2nd"]."""
    return _WORD.findall(text.lower())


class BM25Backend:
    """BM25 (Okapi, ``bm25s``) over a small local corpus, held in memory.

    Args:
        documents: a list of ``{"id": ..., "text": ...}`` dicts, or the path of a JSONL file with one such
            object per line (a missing id becomes the line number).
    """

    def __init__(self, documents: list[dict[str, Any]] | str | Path):
        import bm25s  # imported here: only episodes with a search corpus need it

        self.documents = _read_jsonl(Path(documents)) if isinstance(documents, (str, Path)) else list(documents)
        if not self.documents:
            raise ValueError("BM25Backend needs at least one document")
        for i, doc in enumerate(self.documents):
            if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
                raise ValueError(f"document {i} must be a dict with a 'text' string, got {str(doc)[:80]}")
        self.ids = [str(doc.get("id", i)) for i, doc in enumerate(self.documents)]
        self._index = bm25s.BM25()
        self._index.index([tokenize(doc["text"]) for doc in self.documents], show_progress=False)

    def search(self, query: str, k: int) -> list[dict[str, Any]]:
        """Top-k documents by BM25 score; documents sharing no word with the query are left out."""
        words = tokenize(query)
        if not words:
            return []
        k = min(k, len(self.documents))
        positions, scores = self._index.retrieve([words], k=k, show_progress=False)
        return [
            {"id": self.ids[int(i)], "text": self.documents[int(i)]["text"], "score": float(s)}
            for i, s in zip(positions[0], scores[0])
            if s > 0
        ]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Documents of a JSONL corpus; a missing id becomes the 0-based line number."""
    documents = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{line_no + 1}: not JSON ({e})") from e
            if isinstance(doc, dict):
                doc.setdefault("id", str(line_no))
            documents.append(doc)
    return documents


def search(query: str, k: int = 3) -> str:
    """Search the reference collection for passages relevant to a query.

    Args:
        query: What to look for, in a few keywords or a short question.
        k: How many passages to return, from 1 to 10.

    Returns:
        The passages, best first, each numbered and with its id.
    """
    backend = current_context().search_backend
    if backend is None:
        raise ToolError("search is not available in this episode (no search backend is configured).")
    if not isinstance(query, str) or not query.strip():
        raise ToolError("search: the query must be a non-empty string.")
    if len(query) > MAX_QUERY_CHARS:
        raise ToolError(f"search: the query is {len(query)} characters long (at most {MAX_QUERY_CHARS}).")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ToolError(f"search: k must be a whole number from 1 to {MAX_K}, got {shown(k)}.")
    hits = backend.search(query, k)[:k]
    if not hits:
        return f"No passages found for {query!r}."
    lines = []
    for rank, hit in enumerate(hits, 1):
        text = " ".join(str(hit.get("text", "")).split())
        if len(text) > MAX_PASSAGE_CHARS:
            text = text[: MAX_PASSAGE_CHARS - 3] + "..."
        lines.append(f"[{rank}] (id: {hit.get('id', '?')}) {text}")
    return "\n".join(lines)


# The line the judge's prompt gives this tool ("call search to ..."; `agent.tools.tool_use_prompt`).
search.hint = "check facts in the reference collection"
