"""Synthetic preference pairs whose right answer is known from the pixels: the demo and test data set.

    mmreward data build data_recipes/demo.yaml --out /tmp/mmreward-demo-data

Images: the prompt "a red circle on the left" (colour x shape x position) against two images, one drawn to
match it and one that differs in exactly one of colour, shape or position (``meta["differs"]``). Videos: the
prompt "a red square moving right" against a clip of that motion and a clip with another direction or no
motion (``meta["differs"] == "motion"``). Both are generation pairs: each of ``a``/``b`` holds one media item
and ``label`` says which one matches. Every pair draws from its own RNG seeded with ``(seed, index)``, so a
set of n pairs is a prefix of a set of 2n pairs and rebuilding gives byte-identical files.

:func:`synthetic_pairs` is the converter ``SOURCES["synthetic_shapes"]`` (``mmreward.data.sources``); the demo
recipe built from it is ``mmreward.data.recipe.demo`` (this generator knows nothing of recipes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mmreward.data.schema import Candidate, MediaItem, PreferencePair
from mmreward.data.synthetic.media import write_video

COLOURS = {"red": (220, 40, 40), "green": (40, 165, 60), "blue": (40, 80, 220), "yellow": (235, 200, 30)}
SHAPES = ("circle", "square", "triangle")
# Centre of each position as a fraction of (width, height): far enough apart that jitter never confuses them.
POSITIONS = {"left": (0.27, 0.5), "right": (0.73, 0.5), "top": (0.5, 0.27), "bottom": (0.5, 0.73)}
# Unit step per direction in image coordinates (y grows downwards).
DIRECTIONS = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1)}
MOTIONS = (*DIRECTIONS, "static")
ATTRIBUTES = ("colour", "shape", "position")

# x264's rate-control lookahead (mbtree) makes output differ between processes for identical frames; without
# it, and single-threaded, the same frames always give the same bytes, so rebuilt data sets are identical.
_X264 = {"threads": "1", "x264-params": "rc-lookahead=0"}
_OPTIONS = ("kind", "n", "seed", "size", "frames", "fps", "target")
# Attributes a fixed `target` may pin, per kind.
_TARGET_KEYS = {"image": {"colour": COLOURS, "shape": SHAPES, "position": POSITIONS},
                "video": {"colour": COLOURS, "motion": DIRECTIONS}}
_DEFAULTS = {"image": {"size": 112}, "video": {"size": 64, "frames": 8, "fps": 4}}


def _options(spec: Any) -> dict[str, Any]:
    """Validated options with defaults filled in; unknown keys are an error naming the valid ones."""
    opts = dict(spec.options or {})
    unknown = sorted(set(opts) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"source {spec.name!r}: unknown synthetic_shapes option(s) {', '.join(unknown)} "
                         f"(valid: {', '.join(_OPTIONS)})")
    kind = opts.get("kind", "image")
    if kind not in _DEFAULTS:
        raise ValueError(f"source {spec.name!r}: kind must be 'image' or 'video', got {kind!r}")
    opts = {"kind": kind, "n": 100, "seed": 0, **_DEFAULTS[kind], **opts}
    for key in ("n", "size", "frames", "fps"):
        if key in opts and (not isinstance(opts[key], int) or isinstance(opts[key], bool) or opts[key] < 0):
            raise ValueError(f"source {spec.name!r}: option {key} must be a non-negative integer, got {opts[key]!r}")
    if opts["size"] < 32 or (kind == "video" and opts["size"] % 2):
        raise ValueError(f"source {spec.name!r}: size must be >= 32 (and even for videos), got {opts['size']}")
    if kind == "video" and (opts["frames"] < 2 or opts["fps"] < 1):
        raise ValueError(f"source {spec.name!r}: videos need frames >= 2 and fps >= 1")
    target = opts.get("target") or {}
    for key, value in target.items():
        valid = _TARGET_KEYS[kind].get(key)
        if valid is None or value not in valid:
            raise ValueError(f"source {spec.name!r}: target {key}={value!r} invalid for {kind}; valid: "
                             + "; ".join(f"{k} in {', '.join(v)}" for k, v in _TARGET_KEYS[kind].items()))
    opts["target"] = dict(target)
    return opts


def synthetic_pairs(spec: Any, media_dir: Path) -> Iterator[PreferencePair]:
    """Generate ``spec.options["n"]`` preference pairs and write their media under ``media_dir/<spec.name>/``.

    Args:
        spec: a ``SourceSpec``; ``spec.options`` holds ``kind`` ("image" | "video", default "image"), ``n``
            (pairs, default 100), ``seed`` (default 0), ``size`` (square side in pixels; 112 for images, 64
            for videos), ``frames`` (video length, default 8), ``fps`` (default 4) and ``target`` (pin
            attributes of the matching candidate: colour/shape/position for images, colour/motion for videos;
            the demo pins one prompt per kind).
        media_dir: folder for generated media; files go to ``media_dir/<spec.name>/<index>_{a,b}.{png,mp4}``.

    Returns:
        An iterator of PreferencePair with ids ``"<kind>-<index>"``. Media paths are relative to
        ``media_dir`` (``MediaItem.base_dir``), so ``write_jsonl`` re-anchors them wherever it writes.
    """
    opts = _options(spec)
    folder = Path(media_dir) / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    make = _image_pair if opts["kind"] == "image" else _video_pair
    for i in range(opts["n"]):
        # One RNG per pair: pair i does not depend on n, so small and large sets share their first pairs.
        rng = np.random.default_rng([opts["seed"], i])
        yield make(rng, i, opts, Path(media_dir), f"{spec.name}/{i:05d}")


def _assemble(rng: np.random.Generator, i: int, opts: dict[str, Any], prompt: str, meta: dict[str, Any],
              content: tuple[Any, Any], save: Callable[[Any, Path], Any], media_dir: Path,
              stem: str) -> PreferencePair:
    """Put the matching content (``content[0]``) in slot A or B at random, save both and build the pair."""
    first = bool(rng.integers(2))
    kind = opts["kind"]
    candidates = []
    # Files are named by slot, after the draw, so a file name never reveals which candidate matches.
    for slot, obj in zip("ab", content if first else content[::-1]):
        rel = f"{stem}_{slot}.{'png' if kind == 'image' else 'mp4'}"
        save(obj, media_dir / rel)
        candidates.append(Candidate(media=[MediaItem(type=kind, path=rel, base_dir=media_dir)]))
    return PreferencePair(id=f"{kind}-{i:05d}", prompt=prompt, a=candidates[0], b=candidates[1],
                          label="A" if first else "B", meta={"generator": "synthetic_shapes", "kind": kind, **meta})


# ---------------------------------------------------------------------------------------------- images

def _image_pair(rng: np.random.Generator, i: int, opts: dict[str, Any], media_dir: Path,
                stem: str) -> PreferencePair:
    # str(): rng.choice returns numpy strings, which would leak into the JSON-bound meta.
    target = {"colour": str(rng.choice(list(COLOURS))), "shape": str(rng.choice(SHAPES)),
              "position": str(rng.choice(list(POSITIONS)))}
    # A pinned target (e.g. the demo's single prompt "a red circle on the left") replaces the random draw.
    target.update(opts["target"])
    differs = str(rng.choice(ATTRIBUTES))
    choices = {"colour": list(COLOURS), "shape": list(SHAPES), "position": list(POSITIONS)}[differs]
    other = {**target, differs: str(rng.choice([c for c in choices if c != target[differs]]))}
    prompt = f"a {target['colour']} {target['shape']} on the {target['position']}"
    images = (_draw_image(rng, target, opts["size"]), _draw_image(rng, other, opts["size"]))
    meta = {"target": target, "other": other, "differs": differs}
    return _assemble(rng, i, opts, prompt, meta, images, lambda im, path: im.save(path), media_dir, stem)


def _draw_image(rng: np.random.Generator, attrs: dict[str, str], size: int) -> Any:
    """Draw one shape on a white-to-light-grey background, with jittered size and centre.

    Returns:
        PIL RGB image (size, size); the shape's bounding box centre is within 4% of ``size`` of its position.
    """
    from PIL import Image, ImageDraw

    background = int(rng.integers(215, 256))
    image = Image.new("RGB", (size, size), (background,) * 3)
    fx, fy = POSITIONS[attrs["position"]]
    cx = fx * size + rng.uniform(-0.04, 0.04) * size
    cy = fy * size + rng.uniform(-0.04, 0.04) * size
    r = size * 0.16 * rng.uniform(0.85, 1.15)  # half the side of the bounding box
    box = (round(cx - r), round(cy - r), round(cx + r), round(cy + r))
    draw, fill = ImageDraw.Draw(image), COLOURS[attrs["colour"]]
    if attrs["shape"] == "circle":
        draw.ellipse(box, fill=fill)
    elif attrs["shape"] == "square":
        draw.rectangle(box, fill=fill)
    else:  # upward triangle: its bounding box centre lies inside it (half-width r/2 at mid-height)
        draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) / 2, box[1])], fill=fill)
    return image


# ---------------------------------------------------------------------------------------------- videos

def _video_pair(rng: np.random.Generator, i: int, opts: dict[str, Any], media_dir: Path,
                stem: str) -> PreferencePair:
    colour = str(opts["target"].get("colour") or rng.choice(list(COLOURS)))
    motion = str(opts["target"].get("motion") or rng.choice(list(DIRECTIONS)))
    other = str(rng.choice([m for m in MOTIONS if m != motion]))
    clips = [_moving_square(rng, colour, m, opts["size"], opts["frames"]) for m in (motion, other)]
    meta = {"target": {"colour": colour, "motion": motion}, "other": {"colour": colour, "motion": other},
            "differs": "motion"}
    return _assemble(rng, i, opts, f"a {colour} square moving {motion}", meta, tuple(clips),
                     lambda clip, path: write_video(path, clip, opts["fps"], options=_X264), media_dir, stem)


def _moving_square(rng: np.random.Generator, colour: str, motion: str, size: int, frames: int) -> np.ndarray:
    """Frames of a square crossing the frame in ``motion``'s direction (or resting near the centre).

    Returns:
        (frames, size, size, 3) uint8.
    """
    background = int(rng.integers(215, 256))
    side = int(round(size * 0.22 * rng.uniform(0.85, 1.15)))
    margin = size * 0.06
    far = size - margin - side  # top-left corner of a square touching the far margin
    # The coordinate across the motion stays near the middle, jittered so clips differ.
    across = (size - side) / 2 + rng.uniform(-0.1, 0.1) * size
    t = np.linspace(0.0, 1.0, frames)
    dx, dy = DIRECTIONS.get(motion, (0, 0))
    if motion == "static":
        xs = np.full(frames, across + rng.uniform(-0.05, 0.05) * size)
        ys = np.full(frames, across)
    else:
        # Travel from one margin to the other: ascending for +1, descending for -1.
        travel = margin + (far - margin) * (t if (dx or dy) > 0 else 1 - t)
        xs, ys = (travel, np.full(frames, across)) if dx else (np.full(frames, across), travel)
    clip = np.full((frames, size, size, 3), background, dtype=np.uint8)
    for k in range(frames):
        x0, y0 = int(round(xs[k])), int(round(ys[k]))
        clip[k, y0 : y0 + side, x0 : x0 + side] = COLOURS[colour]
    return clip
