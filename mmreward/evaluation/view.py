"""`mmreward view`: open an eval run's report.html, or a trajectory file as a report, on localhost.

    mmreward view eval_results/videogen_rewardbench      # serves its report.html (written if missing)
    mmreward view traces.jsonl                           # SFT / RFT / teacher traces, the same browser
    mmreward view RUN --no-serve                         # only write the page and print its path

The page needs no server (it opens from disk); serving is for remote machines, where a browser reaches it
through `ssh -L PORT:127.0.0.1:PORT host`. The server binds to 127.0.0.1 unless told otherwise and serves only
the folder of the page, read-only.
"""

from __future__ import annotations

import logging
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mmreward.errors import DataError
from mmreward.evaluation.html_report import REPORT_NAME, rerender_run, write_trace_report

logger = logging.getLogger(__name__)


def prepare(target: str | Path, *, rebuild: bool = False, limit: int | None = None) -> Path:
    """The page to show for a run folder, a trajectory JSONL or an existing report page.

    Args:
        target: an eval output folder (results.json + samples.jsonl), a trajectory .jsonl, or a .html page.
        rebuild: re-render a run's report.html from its files even when one exists.
        limit: at most this many traces of a trajectory file.

    Returns:
        The page's path. Raises DataError naming the target when it is none of these.
    """
    target = Path(target)
    if target.is_dir():
        page = target / REPORT_NAME
        if rebuild or not page.is_file():
            if not (target / "results.json").is_file():
                raise DataError(f"{target}: no report.html and no results.json; give an `mmreward eval` output "
                                "folder or a trajectory .jsonl file")
            page = rerender_run(target)
        return page
    if target.is_file() and target.suffix == ".html":
        return target
    if target.is_file() and target.suffix == ".jsonl":
        return write_trace_report(target, limit=limit)
    raise DataError(f"{target}: not an eval run folder, a trajectory .jsonl file or a report .html page")


class _Handler(SimpleHTTPRequestHandler):
    """Static files of one folder; request lines go to the debug log instead of stderr."""

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        logger.debug("view: " + format, *args)


def make_server(page: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server for the page's folder (port 0: a free port); call `serve_forever()` on it."""
    handler = partial(_Handler, directory=str(Path(page).parent))
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as err:
        raise DataError(f"cannot listen on {host}:{port} ({err}); pick another --port") from None


def page_url(server: ThreadingHTTPServer, page: Path) -> str:
    """The URL of the page on the server."""
    host, port = server.server_address[:2]
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/{Path(page).name}"
