"""Human-readable evaluation outputs: the markdown table and the PNG plots (matplotlib, headless)."""

from __future__ import annotations

import math
from pathlib import Path


def write_table(summary: dict, path: Path) -> None:
    """A markdown table of every scalar metric, with the protocol and data identity written next to the numbers."""
    lines = [f"# {summary['benchmark']}", "",
             f"- model: `{summary['model']}` (scorer: {summary['scorer']})",
             f"- data: `{summary['data']}` revision {summary['revision']}, {summary['items']} items"
             + (f" (paper: {summary['expected_size']})" if summary.get("expected_size") else ""),
             f"- protocol: {summary['protocol']}",
             f"- sampling contract: {summary['sampling_contract']}", "",
             "| metric | value |", "|---|---|"]
    for name, value in _flatten(summary["metrics"]):
        lines.append(f"| {name} | {value:.4f} |" if isinstance(value, float) else f"| {name} | {value} |")
    if summary.get("probes"):
        lines += ["", "## Bias probes", "", "| probe | value |", "|---|---|"]
        for name, value in _flatten(summary["probes"]):
            lines.append(f"| {name} | {value:.4f} |" if isinstance(value, float) else f"| {name} | {value} |")
    lines += _failure_lines(summary.get("failures") or {})
    path.write_text("\n".join(lines) + "\n")


def _failure_lines(failures: dict) -> list[str]:
    """The "Failures" section: media failures (left out of every denominator) and unparsed verdicts."""
    what = {"media": "media failures (left out of every denominator)",
            "unparsed": "unparsed verdicts (counted per the benchmark's official rule)"}
    lines = ["", "## Failures", ""]
    for kind, text in what.items():
        entry = failures.get(kind) or {"count": 0, "examples": []}
        lines.append(f"- {entry['count']} {text}")
        lines += [f"  - `{e['id']}`: {e['reason']}" for e in entry["examples"][:10]]
    return lines


def _flatten(metrics: dict, prefix: str = ""):
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, name + ".")
        elif isinstance(value, (int, float, str)) and not (isinstance(value, float) and math.isnan(value)):
            yield name, value
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            yield name, "n/a (no data)"
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            yield from ((f"{name}[{i}]", v) for i, v in enumerate(value))


def write_plots(rows: list[dict], kind: str, out: Path) -> list[Path]:
    """Score histograms (preferred vs other), per-category accuracy bars and a calibration curve, as PNGs.

    Args:
        rows: per-sample rows from the runner.
        kind: "pairs" or "listwise".
        out: output folder.

    Returns:
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: CI and clusters have no display
    import matplotlib.pyplot as plt

    written = []
    if kind == "pairs":
        pairs = [r for r in rows if r.get("margin") is not None and r["label"] in ("A", "B")]
        for name, draw in (("scores_hist.png", _hist), ("category_accuracy.png", _categories),
                           ("calibration.png", _calibration)):
            fig, ax = plt.subplots(figsize=(6, 4))
            draw(ax, pairs)
            fig.tight_layout()
            fig.savefig(out / name, dpi=100)
            plt.close(fig)
            written.append(out / name)
    else:
        fig, ax = plt.subplots(figsize=(6, 4))
        scores = [r["score"] for r in rows if r.get("score") is not None]
        ax.hist(scores, bins=30)
        ax.set(title="scores", xlabel="score", ylabel="candidates")
        fig.tight_layout()
        fig.savefig(out / "scores_hist.png", dpi=100)
        plt.close(fig)
        written.append(out / "scores_hist.png")
    return written


def _preferred_scores(row: dict) -> tuple[float, float] | None:
    """(score of the human-preferred candidate, score of the other), from the overall scores when present."""
    scores = row.get("scores") or {}
    overall = scores.get("overall")
    if not isinstance(overall, list):
        return None
    a, b = overall
    return (a, b) if row["label"] == "A" else (b, a)


def _hist(ax, pairs: list[dict]) -> None:
    both = [s for s in (_preferred_scores(r) for r in pairs) if s is not None]
    if both:
        ax.hist([s[0] for s in both], bins=30, alpha=0.6, label="preferred")
        ax.hist([s[1] for s in both], bins=30, alpha=0.6, label="other")
        ax.set(title="scores of preferred vs other candidates", xlabel="score", ylabel="pairs")
    else:
        ax.hist([r["margin"] for r in pairs], bins=30)
        ax.set(title="margin (A − B)", xlabel="margin", ylabel="pairs")
    ax.legend() if both else None


def _categories(ax, pairs: list[dict]) -> None:
    groups: dict[str, list[bool]] = {}
    for row in pairs:
        correct = (row["margin"] > 0) == (row["label"] == "A") and row["margin"] != 0
        groups.setdefault(str(row.get("category") or "all"), []).append(correct)
    names = sorted(groups)
    ax.bar(names, [sum(groups[n]) / len(groups[n]) for n in names])
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set(title="accuracy per category (ties excluded)", ylabel="accuracy", ylim=(0, 1))
    ax.tick_params(axis="x", rotation=30)


def _calibration(ax, pairs: list[dict], bins: int = 10) -> None:
    """Predicted P(A preferred) = sigmoid(margin) (Bradley–Terry) against the observed frequency, per bin."""
    predicted = [1 / (1 + math.exp(-max(-60.0, min(60.0, r["margin"])))) for r in pairs]
    observed = [1.0 if r["label"] == "A" else 0.0 for r in pairs]
    xs, ys = [], []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [o for p, o in zip(predicted, observed) if lo <= p < hi or (b == bins - 1 and p == 1.0)]
        if members:
            xs.append((lo + hi) / 2)
            ys.append(sum(members) / len(members))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    ax.plot(xs, ys, marker="o")
    ax.set(title="calibration: sigmoid(margin) vs observed", xlabel="predicted P(A preferred)",
           ylabel="observed fraction A preferred", xlim=(0, 1), ylim=(0, 1))
