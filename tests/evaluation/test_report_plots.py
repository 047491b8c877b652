"""Eval plots readable without the JSON: calibration points at their members' mean prediction with counts,
labelled category bars (also at accuracy 0), titles naming benchmark and model."""

import math

import pytest

from mmreward.evaluation.report import (
    _calibration,
    _categories,
    calibration_bins,
    category_accuracy,
    write_plots,
)


def _row(margin, label="A", category=None):
    return {"margin": margin, "label": label, "category": category}


def test_calibration_points_sit_at_the_mean_prediction_with_counts():
    pairs = [_row(1e-4, "A"), _row(-1e-4, "B"), _row(math.log(3), "A"), _row(math.log(3), "B"),
             _row(math.log(3), "A")]
    # sigmoid(±1e-4) = 0.5 ± 2.5e-5: both in bin [0.4, 0.5) / [0.5, 0.6); sigmoid(ln 3) = 0.75, bin [0.7, 0.8).
    points = calibration_bins(pairs)
    assert [(round(x, 6), y, n) for x, y, n in points] == [(0.499975, 0.0, 1), (0.500025, 1.0, 1),
                                                           (0.75, 2 / 3, 3)]


def test_category_accuracy_counts_zero_margins_as_wrong():
    pairs = [_row(1.0, "A", "x"), _row(-2.0, "A", "x"), _row(0.0, "B", "y"), _row(3.0, "B", "y")]
    assert category_accuracy(pairs) == [("x", 0.5, 2), ("y", 0.0, 2)]


def test_bars_and_points_are_labelled_even_at_accuracy_zero():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    _categories(ax, [_row(-1.0, "A", "motion"), _row(1.0, "B", "motion"), _row(1.0, "A", "colour")])
    assert sorted(t.get_text() for t in ax.texts) == ["0.00\n(n=2)", "1.00\n(n=1)"]
    assert [round(p.get_height(), 3) for p in ax.patches] == [1.0, 0.0]
    ax.clear()
    _calibration(ax, [_row(math.log(3), "A"), _row(math.log(3), "B")])
    assert [t.get_text() for t in ax.texts] == ["n=2"]
    assert ax.lines[1].get_xdata().tolist() == pytest.approx([0.75])
    plt.close(fig)


def test_write_plots_titles_name_benchmark_and_model(tmp_path, monkeypatch):
    import matplotlib.figure

    titles = []
    original = matplotlib.figure.Figure.savefig

    def spy(self, *args, **kwargs):
        titles.append(self._suptitle.get_text() if self._suptitle else "")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    rows = [{**_row(0.3, "A", "c"), "scores": {"overall": [0.5, 0.2]}}, {**_row(-0.2, "B"), "scores": None}]
    written = write_plots(rows, "pairs", tmp_path, title="videogen_rewardbench · ckpt/")
    assert [p.name for p in written] == ["scores_hist.png", "category_accuracy.png", "calibration.png"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert titles == ["videogen_rewardbench · ckpt/"] * 3
