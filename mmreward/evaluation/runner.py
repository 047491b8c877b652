"""Score a benchmark with any scorer and write results: metrics JSON, per-sample JSONL, a markdown table, plots
and report.html (a self-contained page to browse the samples; judges' trajectories included).

    mmreward eval --benchmark videogen_rewardbench --data DIR --model CKPT [--scorer head] [--out DIR]
    torchrun --nproc_per_node 8 -m mmreward.cli eval --benchmark vl_rewardbench --data DIR --model CKPT

Under torchrun every rank scores a contiguous shard (contiguous, so pairs that share media stay together and
each unique media item is still scored once) and rank 0 gathers the per-sample results, computes the metrics on
all of them and writes the outputs: the numbers equal a one-process run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

from mmreward.errors import ConfigError, DataError
from mmreward.evaluation.benchmarks import BenchmarkData, get_benchmark
from mmreward.evaluation.eval_config import EvalConfig, load_suite, set_judge_options
from mmreward.evaluation.metrics.glue import clean, compute_metrics
from mmreward.evaluation.protocol import JudgeProtocol, apply_protocol, summarize_protocol
from mmreward.evaluation.report import write_plots, write_table

__all__ = ["EvalConfig", "load_suite", "run_eval"]

logger = logging.getLogger(__name__)


def _dist():
    """(rank, world size), initialising torch.distributed under torchrun."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        import torch

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if world > 1 else (0, 1)


def _gather(rows: list[dict], world: int) -> list[dict]:
    if world == 1:
        return rows
    import torch.distributed as dist

    parts: list = [None] * world
    dist.all_gather_object(parts, rows)
    return [row for part in parts for row in part]


def _failure(result) -> str | None:
    """None when scored; "unparsed" when no verdict could be read; "media" when the record failed to score."""
    if getattr(result, "preferred", None) is not None or getattr(result, "score", None) is not None:
        return None
    errors = [s["error"] for s in getattr(result, "samples", []) if s.get("error")] or [result.error or ""]
    # Parse failures come from the judge or the protocol ("parse failure: ..."); anything else is media/input.
    return "unparsed" if all("parse failure" in e for e in errors) else "media"


def _media_path(record) -> str:
    """The media path as the benchmark file writes it (MM-RLHF's categories are keywords of this path)."""
    if record.meta.get("media_path"):
        return str(record.meta["media_path"])
    return " ".join(str(m.path or m.url) for m in record.all_media() if m.path or m.url)


def _pair_row(record, result) -> dict:
    """The per-sample fields of a preference pair (see `metrics.glue` for how metrics read them)."""
    row = {"label": record.label, "dimensions": record.dimensions or None, "margin": result.margin,
           "preferred": result.preferred, "consistent": result.consistent, "parse_failures": result.parse_failures,
           "scores": getattr(result, "scores", None) or None,
           "samples": [{k: s.get(k) for k in ("repeat", "order", "preferred", "margin", "overall", "error", "trace")
                        if k != "trace" or s.get(k) is not None} for s in getattr(result, "samples", [])]}
    human = record.meta.get("human")
    if isinstance(human, dict) and human.get("Overall") is None:
        # The benchmark's own label cell was empty (VideoGen-RewardBench): the record's "tie" is a placeholder.
        row["label"] = None
    row["media_path"] = _media_path(record)
    return row


def _sample_rows(data: BenchmarkData, fields: tuple[str, ...], offset: int, records, results) -> list[dict]:
    """Per-sample output rows (JSON-ready), with the record's position for ordering after a gather.

    `fields` are the benchmark's `row_fields`: the `meta` keys its metrics read, copied when present.
    """
    rows = []
    for i, (record, result) in enumerate(zip(records, results)):
        row = {"index": offset + i, "id": record.id, **{k: record.meta.get(k) for k in ("category", "subcategory",
                                                                                       "group") if k in record.meta}}
        if data.kind == "pairs":
            row.update(_pair_row(record, result))
        else:
            row.update(score=result.score, rank=record.meta.get("rank"), correct=record.meta.get("correct"))
            if getattr(result, "trace", None) is not None:
                row["trace"] = result.trace
        row.update({k: record.meta[k] for k in fields if k in record.meta})
        row["failure"] = _failure(result)
        if getattr(result, "error", None):
            row["error"] = result.error
        rows.append(row)
    return rows


def run_eval(cfg: EvalConfig) -> dict:
    """Evaluate a scorer on a benchmark; returns the results dict (also written to `<out>/results.json`)."""
    rank, world = _dist()
    try:
        return _run(cfg, rank, world)
    finally:
        if world > 1:
            import torch.distributed as dist

            # Wait for rank 0's writing, then shut the process group down cleanly: leaving gloo's threads
            # running at interpreter exit aborts the process ("terminate called without an active exception").
            dist.barrier()
            dist.destroy_process_group()


def _protocol(cfg: EvalConfig, spec) -> JudgeProtocol:
    """The judge protocol of the run; a bad value (a config changed after it was built) names the flags."""
    try:
        return cfg.protocol(spec)
    except ValueError as err:
        raise ConfigError(f"eval: {err} (--order / --k / --unparsed, or the --config YAML)") from None


def _records(cfg: EvalConfig, data: BenchmarkData) -> list:
    records = data.records[: cfg.limit] if cfg.limit is not None else data.records
    if not records:
        why = f"--limit {cfg.limit}" if cfg.limit is not None and data.records else "the loader found no items"
        raise DataError(f"{cfg.benchmark}: nothing to evaluate in {cfg.data} ({why}); no metric is defined on "
                        "zero items")
    if data.expected_size and cfg.limit is None and len(data.records) != data.expected_size:
        logger.warning("%s: %d items, the paper used %d; numbers are not strictly comparable", cfg.benchmark,
                       len(data.records), data.expected_size)
    return records


def _run(cfg: EvalConfig, rank: int, world: int) -> dict:
    from mmreward.scoring import load_scorer

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    spec = get_benchmark(cfg.benchmark)
    protocol = _protocol(cfg, spec)
    data = spec.load(cfg.data, cfg.options)
    records = _records(cfg, data)
    timings["load"] = time.perf_counter() - t0
    scorer = load_scorer(cfg.model, kind=cfg.scorer, mode=cfg.mode, dtype=cfg.dtype)
    # A judge prompts with the named template and offers the named tools; a non-judge scorer refuses them.
    scorer = set_judge_options(scorer, cfg.judge_template, cfg.judge_tools)
    size = -(-len(records) // world)
    shard = records[rank * size:(rank + 1) * size]
    out = Path(cfg.out or f"eval_results/{cfg.benchmark}")
    if cfg.report and hasattr(scorer, "trace_thumbs"):
        from mmreward.evaluation.report_media import Thumbs

        # Judges keep each episode (bounded, thumbnails on disk) for samples.jsonl and the report.
        scorer.trace_thumbs = Thumbs(out)
    t1 = time.perf_counter()
    score_kwargs = dict(batch_size=cfg.batch_size, num_workers=cfg.num_workers, on_error=cfg.on_error,
                        progress=cfg.progress and rank == 0)
    # Presentation order and repeated samples only mean something for pairs; list-wise items are scored as is.
    if data.kind == "pairs":
        results = apply_protocol(scorer, shard, protocol, **score_kwargs)
    else:
        results = scorer.score(shard, **score_kwargs)
    timings["score"] = time.perf_counter() - t1
    if hasattr(scorer, "trace_thumbs"):
        scorer.trace_thumbs = None  # probes re-score: their episodes are not reported
    rows = _gather(_sample_rows(data, spec.row_fields, rank * size, shard, results), world)
    rows.sort(key=lambda r: r["index"])
    if rank != 0:
        return {}
    t2 = time.perf_counter()
    metrics = compute_metrics(spec.metrics, data.kind, rows, scorer.kind)
    timings["metrics"] = time.perf_counter() - t2
    probes = _run_probes(cfg, scorer, records, score_kwargs, protocol)
    timings["probes"] = time.perf_counter() - t2 - timings["metrics"]
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "benchmark": cfg.benchmark, "data": str(cfg.data), "revision": data.revision, "items": len(rows),
        "expected_size": data.expected_size, "info": data.info, "model": str(cfg.model),
        "scorer": scorer.kind, "sampling_contract": _contract(scorer), "protocol": protocol.describe(),
        "protocol_summary": summarize_protocol(results) if world == 1 and data.kind == "pairs" else None,
        "metrics": metrics, "failures": _failures(rows), "probes": probes,
        "errors": sum(1 for r in rows if r.get("error")), "world_size": world,
        "timings": {**timings, "total": time.perf_counter() - t0}, "config": asdict(cfg),
    }
    summary = clean(summary)
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=str, allow_nan=False) + "\n")
    with open(out / "samples.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(clean(row), ensure_ascii=False, default=str, allow_nan=False) + "\n")
    write_table(summary, out / "results.md")
    plots = write_plots(rows, data.kind, out, title=f"{cfg.benchmark} · {cfg.model}")
    if cfg.report:
        _write_report(out, summary, rows, data.kind, records, scorer, plots)
    logger.info("%s: %s -> %s", cfg.benchmark, _headline(metrics), out)
    return summary


def _write_report(out: Path, summary: dict, rows: list[dict], kind: str, records, scorer, plots) -> None:
    """report.html beside the JSON; a disk error writing it is logged: the numbers are already written."""
    from mmreward.evaluation.html_report import report_contract, write_html_report

    t0 = time.perf_counter()
    try:
        path = write_html_report(out, summary, rows, kind=kind, records=records, contract=report_contract(scorer),
                                 plots=plots)
    except OSError as err:
        logger.warning("%s: report.html not written (%s)", out, err)
        return
    logger.info("report: %s (%.1f s; `mmreward view %s` serves it)", path, time.perf_counter() - t0, out)


def _failures(rows: list[dict], limit: int = 20) -> dict:
    """Media failures and unparsed verdicts: counts and the first `limit` of each with their reasons.

    Every one of them is in samples.jsonl too (`failure`, `error`); none is dropped silently.
    """
    out: dict = {}
    for kind in ("media", "unparsed"):
        hit = [r for r in rows if r.get("failure") == kind]
        out[kind] = {"count": len(hit), "examples": [{"id": r["id"], "reason": r.get("error")} for r in hit[:limit]]}
    return out


def _run_probes(cfg: EvalConfig, scorer, records, score_kwargs: dict, protocol: JudgeProtocol) -> dict:
    """The requested bias probes on the (rank 0) records; each result goes into results.json and the table.

    Probes that score pairs as the evaluation does (length_bias) get the run's protocol, so their numbers are
    comparable with the headline; each probe states its protocol in its result.
    """
    from mmreward.evaluation.probes import PROBES, PROTOCOL_PROBES

    out = {}
    for name in cfg.probes:
        if name not in PROBES:
            raise ConfigError(f"unknown probe {name!r}; known: {', '.join(PROBES)}")
        kwargs = {**score_kwargs, "progress": False}
        if name in PROTOCOL_PROBES:
            kwargs["protocol"] = protocol
        result = PROBES[name](scorer, records, **kwargs)
        # Per-record detail goes to its own file; the summary stays readable.
        out[name] = {k: v for k, v in result.items() if k not in ("per_record", "inconsistent_ids")}
    return out


def _contract(scorer) -> dict | None:
    contract = getattr(scorer, "contract", None)
    return contract.to_dict() if contract is not None and hasattr(contract, "to_dict") else None


def _headline(metrics: dict) -> str:
    """The first few numbers of the metrics, for the log line."""
    flat: list[tuple[str, float]] = []

    def walk(value, name):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{name}.{k}" if name else k)
        elif isinstance(value, float):
            flat.append((name, value))

    walk({k: v for k, v in metrics.items() if k not in ("scored", "unparsed", "failed")}, "")
    return ", ".join(f"{k} {v:.4f}" for k, v in flat[:6])
