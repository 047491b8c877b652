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


def write_plots(rows: list[dict], kind: str, out: Path, title: str = "") -> list[Path]:
    """Score histograms (preferred vs other), per-category accuracy bars and a calibration curve, as PNGs.

    Each plot is readable on its own: titles name the benchmark and model (`title`), bars and calibration points
    carry their values and counts.

    Args:
        rows: per-sample rows from the runner.
        kind: "pairs" or "listwise".
        out: output folder.
        title: what was evaluated, e.g. "videogen_rewardbench · ckpt/"; shown above every plot.

    Returns:
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: CI and clusters have no display
    import matplotlib.pyplot as plt

    written = []
    if kind == "pairs":
        pairs = [r for r in rows if r.get("margin") is not None and r["label"] in ("A", "B")]
        draws = (("scores_hist.png", _hist), ("category_accuracy.png", _categories),
                 ("calibration.png", _calibration))
    else:
        pairs = [r for r in rows if r.get("score") is not None]
        draws = (("scores_hist.png", _listwise_hist),)
    for name, draw in draws:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        draw(ax, pairs)
        if title:
            fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        written.append(out / name)
    return written


def _listwise_hist(ax, rows: list[dict]) -> None:
    ax.hist([r["score"] for r in rows], bins=30)
    ax.set(title=f"scores ({len(rows)} candidates)", xlabel="score", ylabel="candidates")


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
        ax.set(title=f"scores of preferred vs other candidates ({len(both)} pairs)", xlabel="score", ylabel="pairs")
        ax.legend()
    else:
        ax.hist([r["margin"] for r in pairs], bins=30)
        ax.set(title=f"margin (A − B), {len(pairs)} pairs", xlabel="margin", ylabel="pairs")


def category_accuracy(pairs: list[dict]) -> list[tuple[str, float, int]]:
    """(category, accuracy, pairs) sorted by name; a zero margin counts as wrong (ties are excluded upstream)."""
    groups: dict[str, list[bool]] = {}
    for row in pairs:
        correct = (row["margin"] > 0) == (row["label"] == "A") and row["margin"] != 0
        groups.setdefault(str(row.get("category") or "all"), []).append(correct)
    return [(name, sum(groups[name]) / len(groups[name]), len(groups[name])) for name in sorted(groups)]


def _categories(ax, pairs: list[dict]) -> None:
    stats = category_accuracy(pairs)
    names = [name for name, _, _ in stats]
    values = [value for _, value, _ in stats]
    bars = ax.bar(names, values, edgecolor="black", linewidth=0.8)
    # Every bar is labelled, so a category at accuracy 0 shows "0.00 (n=…)" instead of an empty chart.
    for bar, (_, value, count) in zip(bars, stats):
        ax.annotate(f"{value:.2f}\n(n={count})", (bar.get_x() + bar.get_width() / 2, value), ha="center",
                    va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set(title=f"accuracy per category (ties excluded; {len(pairs)} pairs)", ylabel="accuracy", ylim=(0, 1.15))
    ax.tick_params(axis="x", rotation=30)


def calibration_bins(pairs: list[dict], bins: int = 10) -> list[tuple[float, float, int]]:
    """Per non-empty bin of predicted P(A preferred) = sigmoid(margin) (Bradley–Terry): (mean predicted
    probability of its members, observed fraction A preferred, members).

    Points sit at their members' mean prediction, not at the bin centre: a margin of 1e-4 is drawn at 0.500025,
    not at 0.55.
    """
    predicted = [1 / (1 + math.exp(-max(-60.0, min(60.0, r["margin"])))) for r in pairs]
    observed = [1.0 if r["label"] == "A" else 0.0 for r in pairs]
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [(p, o) for p, o in zip(predicted, observed) if lo <= p < hi or (b == bins - 1 and p == 1.0)]
        if members:
            out.append((sum(p for p, _ in members) / len(members), sum(o for _, o in members) / len(members),
                        len(members)))
    return out


def _calibration(ax, pairs: list[dict], bins: int = 10) -> None:
    points = calibration_bins(pairs, bins)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    ax.plot([x for x, _, _ in points], [y for _, y, _ in points], marker="o")
    for x, y, count in points:
        ax.annotate(f"n={count}", (x, y), fontsize=8, xytext=(4, -10), textcoords="offset points")
    ax.set(title=f"calibration: sigmoid(margin) vs observed ({len(pairs)} pairs, {bins} bins)",
           xlabel="predicted P(A preferred), mean of the bin", ylabel="observed fraction A preferred",
           xlim=(0, 1), ylim=(-0.05, 1.05))
