"""report.html: one static page per eval run (or trace file) to look at what the reward model saw and said.

    write_html_report(out_dir, summary, rows, records=records, contract=contract)   # the runner calls this
    write_trace_report("traces.jsonl")                                              # mmreward view traces.jsonl

The page is self-contained: CSS, JavaScript, the run's numbers, the plots and the samples are inside the file,
and a Content-Security-Policy forbids every network request, so it opens from disk on an offline machine.
Thumbnails are small JPEGs written once per unique content under `report_media/`; they are inlined too (as
data URIs, each once) while they total at most `inline_limit` bytes, else the page points at the folder next to
it (a large run stays a fast page). The samples are JSON parsed once; the list renders them in chunks as it is
scrolled, so a 5,000-sample run opens as fast as a small one.

All text from records and model output is put on the page with `textContent` by the script (never as HTML),
and the embedded JSON escapes `<`, so a prompt or a judge's answer cannot inject markup.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from html import escape
from importlib import resources
from pathlib import Path

from mmreward.evaluation.report_media import MEDIA_DIR, Thumbs, load_contract, media_thumbs
from mmreward.evaluation.report_traces import read_trace_file

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"
PLOTS = ("scores_hist.png", "category_accuracy.png", "calibration.png")
MAX_PROMPT = 4000
MAX_RESPONSE = 3000
# Thumbnails are inlined while they total at most this many bytes (base64 adds a third).
INLINE_LIMIT = 24 * 2**20


def _num(value):
    """A finite float rounded for display, or None (JSON has no NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return round(float(value), 6) if math.isfinite(value) else None


def _text(value, limit: int) -> str | None:
    if value is None:
        return None
    value = str(value)
    return value if len(value) <= limit else value[:limit] + f" … [{len(value) - limit} more characters]"


def flatten_metrics(metrics, prefix: str = "") -> list[list]:
    """[[dotted name, value], …] of every scalar (numbers rounded, None/NaN as None, strings as is)."""
    out = []
    for key, value in (metrics or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += flatten_metrics(value, name + ".")
        elif isinstance(value, (int, float, str)) or value is None:
            out.append([name, value if isinstance(value, str) else _num(value)])
    return out


def correct(label, preferred) -> bool | None:
    """Whether a verdict matches the label: None when either is missing; a tie is right only against a tie."""
    if label not in ("A", "B", "tie") or preferred not in ("A", "B", "tie"):
        return None
    return label == preferred


def _candidate(cand, contract, thumbs: Thumbs | None) -> dict:
    out: dict = {"text": _text(cand.text, MAX_RESPONSE)}
    if cand.media:
        out["media"] = [_media(m, contract, thumbs) for m in cand.media]
    return out


def _media(item, contract, thumbs: Thumbs | None) -> dict:
    if thumbs is None:
        return {"kind": item.type, "path": str(item.path or item.url or item.type), "frames": []}
    return media_thumbs(item, contract, thumbs)


def _pair_sample(row: dict, record, contract, thumbs) -> dict:
    s = {"label": row.get("label"), "pref": row.get("preferred"), "margin": _num(row.get("margin")),
         "cons": row.get("consistent"), "pf": row.get("parse_failures") or 0, "scores": row.get("scores"),
         "dims": row.get("dimensions"), "ok": correct(row.get("label"), row.get("preferred"))}
    s["samples"] = [{"order": x.get("order"), "repeat": x.get("repeat"), "pref": x.get("preferred"),
                     "margin": _num(x.get("margin")), "err": _text(x.get("error"), 1000), "trace": x.get("trace")}
                    for x in row.get("samples") or []]
    if record is not None:
        s["a"], s["b"] = _candidate(record.a, contract, thumbs), _candidate(record.b, contract, thumbs)
        if record.media:
            s["shared"] = [_media(m, contract, thumbs) for m in record.media]
    return s


def _list_sample(row: dict, record, contract, thumbs) -> dict:
    s = {"score": _num(row.get("score")), "rank": row.get("rank"), "ok": row.get("correct")
         if isinstance(row.get("correct"), bool) else None, "trace": row.get("trace")}
    if record is not None:
        s["response"] = _text(getattr(record, "response", None), MAX_RESPONSE)
        if getattr(record, "media", None):
            s["media"] = [_media(m, contract, thumbs) for m in record.media]
    return s


def sample_entries(rows: list[dict], kind: str, *, records=None, contract=None,
                   thumbs: Thumbs | None = None) -> list[dict]:
    """The per-sample entries of the page, from the runner's rows (and the records, for prompts and media).

    Args:
        rows: samples.jsonl rows ("index" is the record's position in `records`).
        kind: "pairs" or "listwise".
        records: the evaluated records (None: prompts and thumbnails left out, e.g. re-rendering an old run).
        contract: the scorer's `MediaContract`, so video thumbnails are the frames the model was given.
        thumbs: thumbnail store (None: no thumbnails).

    Returns:
        One dict per row, keys shortened for the page ("i", "id", "prompt", "cat", "fail", "err", "ok", …).
    """
    out = []
    for n, row in enumerate(rows):
        index = row.get("index", n)
        record = records[index] if records is not None and isinstance(index, int) and index < len(records) else None
        entry = {"i": index, "id": str(row.get("id")), "cat": row.get("category"), "fail": row.get("failure"),
                 "err": _text(row.get("error"), 1000),
                 "prompt": _text(getattr(record, "prompt", None), MAX_PROMPT) if record is not None else None}
        entry.update(_pair_sample(row, record, contract, thumbs) if kind == "pairs"
                     else _list_sample(row, record, contract, thumbs))
        out.append(entry)
    if thumbs is not None and thumbs.skipped:
        logger.warning("report: %d media items not thumbnailed (the report keeps at most %d unique media)",
                       thumbs.skipped, thumbs.max_items)
    return out


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _media_refs(value, found: set) -> None:
    """Every thumbnail path referenced anywhere in the page data."""
    if isinstance(value, dict):
        for key, v in value.items():
            if key in ("src", "image", "evicted") and isinstance(v, str) and v.startswith(MEDIA_DIR + "/"):
                found.add(v)
            else:
                _media_refs(v, found)
    elif isinstance(value, list):
        for v in value:
            _media_refs(v, found)


def inline_media(root: Path, data: dict, limit: int = INLINE_LIMIT) -> dict:
    """{thumbnail path: data URI} for every referenced thumbnail, or {} when they exceed `limit` bytes (the
    page then loads them from `report_media/` next to it)."""
    refs: set = set()
    _media_refs(data, refs)
    files = {ref: root / ref for ref in sorted(refs) if (root / ref).is_file()}
    total = sum(p.stat().st_size for p in files.values())
    if total > limit:
        logger.info("report: %d thumbnails (%.1f MB) stay in %s/ next to the page", len(files), total / 2**20,
                    MEDIA_DIR)
        return {}
    return {ref: _data_uri(path, "image/jpeg") for ref, path in files.items()}


def _asset(name: str) -> str:
    return resources.files("mmreward.evaluation").joinpath("assets", name).read_text(encoding="utf-8")


def _json_script(value) -> str:
    """JSON safe inside a <script> element: `<`, `>`, `&` and the JS line separators are escaped."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str, separators=(",", ":"))
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                     ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return text


def render_page(data: dict, media: dict, title: str) -> str:
    """The whole HTML document: template + CSS + JS + data (see the module docstring)."""
    values = {"__TITLE__": escape(title), "/*__CSS__*/": _asset("report.css"), "/*__JS__*/": _asset("report.js"),
              "__DATA__": _json_script(data), "__MEDIA__": _json_script(media)}
    # Split the template once and fill the gaps: a marker inside the data is never substituted.
    pieces = re.split("(" + "|".join(re.escape(m) for m in values) + ")", _asset("report.html"))
    return "".join(values.get(piece, piece) for piece in pieces)


def _summary_block(summary: dict) -> dict:
    keep = ("benchmark", "data", "revision", "items", "expected_size", "model", "scorer", "protocol",
            "protocol_summary", "sampling_contract", "world_size")
    out = {k: summary.get(k) for k in keep if summary.get(k) is not None}
    out["metrics"] = flatten_metrics(summary.get("metrics"))
    out["probes"] = flatten_metrics(summary.get("probes"))
    out["timings"] = flatten_metrics(summary.get("timings"))
    out["failures"] = {k: (v or {}).get("count", 0) for k, v in (summary.get("failures") or {}).items()}
    return out


def write_html_report(out_dir: str | Path, summary: dict, rows: list[dict], *, kind: str = "pairs", records=None,
                      contract=None, plots=None, thumbs: Thumbs | None = None,
                      inline_limit: int = INLINE_LIMIT) -> Path:
    """Write `<out_dir>/report.html` for an eval run.

    Args:
        out_dir: the run folder (results.json, samples.jsonl and the plots are there).
        summary: the results dict (`results.json`).
        rows: the per-sample rows (`samples.jsonl`), judge traces included.
        kind: "pairs" or "listwise".
        records: the evaluated records, for prompts and thumbnails (None: left out).
        contract: the scorer's `MediaContract` (None: read from the summary, else the package defaults).
        plots: PNG files to embed (default: the standard plot names found in `out_dir`).
        thumbs: the thumbnail store (default: a new one in `out_dir`).
        inline_limit: thumbnails are inlined while they total at most this many bytes.

    Returns:
        The path of report.html.
    """
    out = Path(out_dir)
    thumbs = thumbs or Thumbs(out)
    contract = contract if contract is not None else load_contract(summary)
    samples = sample_entries(rows, kind, records=records, contract=contract, thumbs=thumbs)
    paths = [Path(p) for p in plots] if plots is not None else [out / n for n in PLOTS if (out / n).is_file()]
    data = {"mode": kind, "summary": _summary_block(summary), "samples": samples,
            "plots": [{"name": p.stem, "src": _data_uri(p, "image/png")} for p in paths if p.is_file()]}
    title = f"{summary.get('benchmark', 'eval')} · {summary.get('model', '')}"
    path = out / REPORT_NAME
    path.write_text(render_page(data, inline_media(out, data, inline_limit), title), encoding="utf-8")
    return path


def rerender_run(run_dir: str | Path) -> Path:
    """Write report.html for a finished run from its results.json and samples.jsonl (without the records: no
    prompts or candidate thumbnails, judge traces included)."""
    from mmreward.errors import DataError

    run = Path(run_dir)
    try:
        summary = json.loads((run / "results.json").read_text(encoding="utf-8"))
        lines = (run / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{run}: not an eval run folder (results.json and samples.jsonl expected: {err})") from None
    rows = []
    for lineno, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line)) if line.strip() else None
        except json.JSONDecodeError as err:
            logger.warning("%s:%d: skipped, not JSON (%s)", run / "samples.jsonl", lineno, err)
    kind = "pairs" if any("margin" in r or "label" in r for r in rows[:50]) else "listwise"
    return write_html_report(run, summary, rows, kind=kind)


def write_trace_report(trace_file: str | Path, out: str | Path | None = None, *, limit: int | None = None,
                       inline_limit: int = INLINE_LIMIT) -> Path:
    """Write a report page for a trajectory JSONL (SFT / RFT / teacher traces), to look at them before training.

    Args:
        trace_file: the JSONL (`data.trajectory.write_trajectories` format).
        out: the page to write (default `<stem>_report.html` next to the file; thumbnails beside it).
        limit: show at most this many traces.
        inline_limit: thumbnails are inlined while they total at most this many bytes.

    Returns:
        The page's path.
    """
    trace_file = Path(trace_file)
    page = Path(out) if out is not None else trace_file.with_name(f"{trace_file.stem}_report.html")
    thumbs = Thumbs(page.parent)
    samples = []
    for n, trace in enumerate(read_trace_file(trace_file, thumbs, limit=limit)):
        prompt = _first_user_text(trace)
        ok = None if trace.get("error") else not (trace.get("parse_error") or trace.get("verdict") is None)
        samples.append({"i": n, "id": str(trace.get("id")), "prompt": prompt, "cat": trace.get("template"),
                        "fail": "unparsed" if ok is False else None, "err": trace.get("error"), "ok": None,
                        "trace": trace})
    summary = {"benchmark": trace_file.name, "items": len(samples), "metrics": {
        "traces": len(samples), "with_verdict": sum(1 for s in samples if s["fail"] is None and not s["err"]),
        "unparsed": sum(1 for s in samples if s["fail"] == "unparsed"),
        "unreadable": sum(1 for s in samples if s["err"])}}
    data = {"mode": "traces", "summary": _summary_block(summary), "samples": samples, "plots": []}
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render_page(data, inline_media(page.parent, data, inline_limit), f"traces · {trace_file.name}"),
                    encoding="utf-8")
    return page


def _first_user_text(trace: dict) -> str | None:
    """The last text part of the first user message (the judge prompt's question), for the list and search."""
    for message in trace.get("messages") or []:
        if message.get("role") == "user":
            texts = [p["text"] for p in message.get("parts", []) if "text" in p]
            return _text(texts[-1], MAX_PROMPT) if texts else None
    return None


def report_contract(scorer):
    """The media contract whose frames a scorer was shown: its own, or for a judge its first-look sampling
    (`initial_frames` per video at its image pixel budget, as `agent.judge_prompt` decodes them)."""
    contract = getattr(scorer, "contract", None)
    config = getattr(scorer, "config", None)
    if contract is not None or getattr(scorer, "kind", None) != "judge" or config is None:
        return contract
    from dataclasses import replace

    from mmreward.data.collate import MediaContract
    from mmreward.data.media.sampling import VideoSampling

    budget = config.image_max_pixels
    video = replace(VideoSampling(), fps=None, nframes=config.initial_frames, max_pixels=budget,
                    min_pixels=min(budget, 4 * 28 * 28))
    return MediaContract(video=video, image_max_pixels=budget, image_min_pixels=min(budget, 4 * 28 * 28))
