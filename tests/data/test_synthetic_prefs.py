"""The synthetic preference set: the matching candidate really matches its prompt, in the pixels.

    pytest tests/data/test_synthetic_prefs.py -q

Images are read back with a small classifier (colour of the shape pixels, which position box they fall in,
and how much of their bounding box they fill: square 1, circle pi/4, triangle 1/2). Videos are decoded with
the library's one decode path and the square is followed by its centroid.
"""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmreward.data.media import load_video
from mmreward.data.sources import SourceSpec
from mmreward.data.synthetic.prefs import COLOURS, DIRECTIONS, POSITIONS, synthetic_pairs


def _pairs(tmp_path: Path, kind: str, n: int, name: str = "shapes", **options):
    spec = SourceSpec(name=name, converter="synthetic_shapes", options={"kind": kind, "n": n, **options})
    return list(synthetic_pairs(spec, tmp_path))


def _slots(pair):
    """(matching media path, other media path) according to the label."""
    a, b = pair.a.media[0].local_path(), pair.b.media[0].local_path()
    return (a, b) if pair.label == "A" else (b, a)


def _read_image(path: Path) -> dict:
    """Colour, position and shape of the one shape in a synthetic image, read from its pixels."""
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    size = pixels.shape[0]
    # The background is grey (r = g = b); every shape colour is strongly saturated.
    mask = pixels.max(-1) - pixels.min(-1) > 60
    assert mask.sum() > 100, f"{path}: no shape found"
    mean = pixels[mask].mean(0)
    colour = min(COLOURS, key=lambda c: np.abs(mean - COLOURS[c]).sum())
    assert np.abs(mean - COLOURS[colour]).max() < 10, f"{path}: shape colour {mean} is not a pure palette colour"
    ys, xs = np.nonzero(mask)
    # Every shape pixel lies in the box of one position (its centre +- a quarter of the image).
    inside = [p for p, (fx, fy) in POSITIONS.items()
              if np.all(np.abs(xs - fx * size) <= size / 4) and np.all(np.abs(ys - fy * size) <= size / 4)]
    assert len(inside) == 1, f"{path}: shape pixels in position boxes {inside}"
    fill = mask.sum() / ((xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1))
    shape = "square" if fill > 0.92 else "circle" if fill > 0.65 else "triangle"
    return {"colour": colour, "position": inside[0], "shape": shape}


def test_matching_image_shows_the_prompt_and_the_other_differs_in_the_recorded_attribute(tmp_path):
    pairs = _pairs(tmp_path, "image", 60)
    assert {p.meta["differs"] for p in pairs} == {"colour", "shape", "position"}
    for pair in pairs:
        target, other = pair.meta["target"], pair.meta["other"]
        assert pair.prompt == f"a {target['colour']} {target['shape']} on the {target['position']}"
        match_path, other_path = _slots(pair)
        assert _read_image(match_path) == target, pair.id
        seen = _read_image(other_path)
        assert seen == other, pair.id
        assert [k for k in target if seen[k] != target[k]] == [pair.meta["differs"]], pair.id


def _centroids(path: Path) -> np.ndarray:
    """(T, 2) centroid (x, y) of the coloured square per decoded frame, as fractions of the frame size."""
    frames = load_video(path, nframes=8, cache=False).frames.numpy().transpose(0, 2, 3, 1).astype(int)
    mask = frames.max(-1) - frames.min(-1) > 60  # saturated square on a grey background, after yuv420p
    out = []
    for m in mask:
        ys, xs = np.nonzero(m)
        assert len(xs) > 0
        out.append((xs.mean() / m.shape[1], ys.mean() / m.shape[0]))
    return np.array(out)


def _motion(path: Path) -> str:
    """The direction the square travels from the first to the last frame, or "static"."""
    shift = _centroids(path)[-1] - _centroids(path)[0]
    if np.abs(shift).max() < 0.05:
        return "static"
    (name,) = [d for d, (dx, dy) in DIRECTIONS.items() if np.dot(shift, (dx, dy)) > 0.3]
    # The coordinate across the motion stays put.
    assert np.abs(shift).min() < 0.05, f"{path}: diagonal shift {shift}"
    return name


def test_matching_clip_moves_in_the_prompt_direction(tmp_path):
    pairs = _pairs(tmp_path, "video", 16)
    assert {p.meta["target"]["motion"] for p in pairs} == set(DIRECTIONS)
    for pair in pairs:
        target = pair.meta["target"]
        assert pair.prompt == f"a {target['colour']} square moving {target['motion']}"
        assert pair.meta["differs"] == "motion"
        match_path, other_path = _slots(pair)
        assert _motion(match_path) == target["motion"], pair.id
        assert _motion(other_path) == pair.meta["other"]["motion"] != target["motion"], pair.id


def test_videos_are_tiny_and_as_requested(tmp_path):
    (pair,) = _pairs(tmp_path, "video", 1)
    video = load_video(pair.a.media[0].local_path(), nframes=8, cache=False)
    assert video.total_frames == 8 and video.native_fps == pytest.approx(4)
    assert pair.a.media[0].path.endswith(".mp4")


def test_labels_are_balanced_between_a_and_b(tmp_path):
    labels = [p.label for p in _pairs(tmp_path, "image", 200)]
    assert set(labels) == {"A", "B"}
    assert 70 <= labels.count("A") <= 130


def _snapshot(root: Path, pairs) -> tuple:
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    return [p.to_dict() for p in pairs], files


def test_same_seed_gives_the_same_records_and_bytes_and_n_is_a_prefix(tmp_path):
    runs = []
    for run in ("one", "two"):
        root = tmp_path / run
        pairs = _pairs(root, "image", 6, seed=3) + _pairs(root, "video", 4, name="clips", seed=3)
        runs.append(_snapshot(root, pairs))
    assert runs[0] == runs[1]
    assert len(runs[0][1]) == 2 * (6 + 4)
    # Pair i does not depend on n, and another seed gives other data.
    longer = _pairs(tmp_path / "longer", "image", 12, seed=3)
    assert [p.to_dict() for p in longer[:6]] == runs[0][0][:6]
    other_seed = _pairs(tmp_path / "other", "image", 6, seed=4)
    assert [p.to_dict() for p in other_seed] != runs[0][0][:6]


def test_media_paths_are_relative_to_the_media_dir_under_the_source_name(tmp_path):
    (pair,) = _pairs(tmp_path, "image", 1, name="imgs")
    item = pair.a.media[0]
    assert item.path == "imgs/00000_a.png" and item.base_dir == tmp_path
    assert item.local_path().is_file()


def test_unknown_and_invalid_options_are_errors(tmp_path):
    with pytest.raises(ValueError, match="colour.*valid: kind, n, seed, size, frames, fps"):
        _pairs(tmp_path, "image", 1, colour="red")
    with pytest.raises(ValueError, match="kind must be"):
        _pairs(tmp_path, "audio", 1)
    with pytest.raises(ValueError, match="even"):
        _pairs(tmp_path, "video", 1, size=63)
