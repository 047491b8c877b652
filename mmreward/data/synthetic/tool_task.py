"""The tool-necessity task: preference pairs whose deciding evidence is *not* in the judge's first look.

    mmreward data build data_recipes/tool_task.yaml --out /tmp/mmreward-tool-task

A judge shown only its first look (`initial_frames` frames per video, images at a small pixel budget) cannot
tell A from B; one content-dependent tool call, whose arguments the prompt gives, shows which one is right:

- videos ("a grey ball that flashes red at about 1.5 s"): both clips show a grey ball drifting across; each
  flashes red for three frames (0.25 s) once. In the matching clip the flash is at the prompt's time, in the
  other at another time. Every flash time lies between the first-look frames (`FIRST_LOOK_TIMES`, the 4 frames
  `load_video(nframes=4)` samples from a 32-frame 8 fps clip), so the first look shows a grey ball in both;
  `select_frames(timestamps=[1.5])` shows the flash in one video and not in the other.
- images ("a tile whose top left badge is red"): a 448 px tile with a 24 px badge in each
  quadrant. In the matching tile the named quadrant's badge is red and another one blue; in the other tile
  the two are exchanged (same colours, other places). At the first-look budget (56 x 56 px) a badge is a
  3 px dot, about 1% of the image token that covers its quadrant, and its colour is lost; `crop(box=<the
  quadrant>)` at the demo's tool budget (112 x 112 px) shows it at 12 px, a third of one image token.

Each record carries its oracle in `meta`: `meta["evidence"]` (where the deciding detail is: a time window per
video, a box per image, which `agent.evidence` checks tool replies against; and `seen`: what the better and the
other candidate show there, which teacher traces write down after each call; `phrase`: the prompt's words that
say where, which they quote) and `meta["oracle_calls"]` (the tool
calls that show it, in the form of `select_frames` / `crop` arguments without the media number). Labels
alternate A, B, A, … (balanced); evaluating both presentation orders (`record.swapped()`) makes a constant or
position-following judge score exactly 0.5. Pair i draws from an RNG seeded with (seed, i), so rebuilding
gives identical files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mmreward.data.schema import Candidate, MediaItem, PreferencePair
from mmreward.data.synthetic.media import write_video

# Videos: 32 frames at 8 fps (4 s). The first look (nframes=4: linspace(0, 31, 4).round() = 0, 10, 21, 31)
# sees these times; every flash (3 frames, +-0.125 s) stays at least one frame away from them.
FPS, FRAMES, VIDEO_SIZE = 8, 32, 64
FIRST_LOOK_TIMES = (0.0, 1.25, 2.625, 3.875)
FLASH_TIMES = (0.5, 1.0, 1.5, 2.0, 3.0, 3.5)
FLASH_HALF = 0.125
# Images: a 448 px tile, one 24 px badge per quadrant; the named quadrant is the oracle crop box. (12 px badges,
# a twentieth of an image token in a 112 px crop, were not read by the demo's tiny judge within 3000 SFT steps:
# its notes were right on 54% of held-out crops, chance.)
IMAGE_SIZE, BADGE = 448, 24
QUADRANTS = {"top left": (0.0, 0.0, 0.5, 0.5), "top right": (0.5, 0.0, 1.0, 0.5),
             "bottom left": (0.0, 0.5, 0.5, 1.0), "bottom right": (0.5, 0.5, 1.0, 1.0)}
GREY, RED, BLUE = (128, 128, 128), (220, 40, 40), (40, 80, 220)
# The strings that say where the evidence is (flash times as the prompt writes them, quadrant names).
WHERE_WORDS = (*(f"{t:.1f}" for t in FLASH_TIMES), *QUADRANTS)
# A crop larger than this fraction of the image does not enlarge a badge enough to read it (evidence checks).
MAX_CROP_AREA = 0.3
_X264 = {"threads": "1", "x264-params": "rc-lookahead=0"}  # byte-identical rebuilds (see synthetic.prefs)
_OPTIONS = ("kind", "n", "seed", "places")


def _options(spec: Any) -> dict[str, Any]:
    opts = dict(spec.options or {})
    unknown = sorted(set(opts) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"source {spec.name!r}: unknown synthetic_tool_task option(s) {', '.join(unknown)} "
                         f"(valid: {', '.join(_OPTIONS)})")
    opts = {"kind": "video", "n": 100, "seed": 0, **opts}
    if opts["kind"] not in ("image", "video"):
        raise ValueError(f"source {spec.name!r}: kind must be 'image' or 'video', got {opts['kind']!r}")
    for key in ("n", "seed"):
        if not isinstance(opts[key], int) or isinstance(opts[key], bool) or opts[key] < 0:
            raise ValueError(f"source {spec.name!r}: option {key} must be a non-negative integer, got {opts[key]!r}")
    valid = FLASH_TIMES if opts["kind"] == "video" else tuple(QUADRANTS)
    places = opts.get("places")
    if places is None:
        opts["places"] = valid
    elif (not isinstance(places, list | tuple) or not places
          or not all(isinstance(p, str | int | float) and not isinstance(p, bool) and p in valid for p in places)):
        raise ValueError(f"source {spec.name!r}: places must be a non-empty list of "
                         f"{'flash times' if opts['kind'] == 'video' else 'quadrants'} from "
                         f"{', '.join(map(str, valid))}; got {places!r}")
    else:
        opts["places"] = tuple(dict.fromkeys(places))
    return opts


def tool_task_pairs(spec: Any, media_dir: Path) -> Iterator[PreferencePair]:
    """Generate `spec.options["n"]` tool-necessity pairs (`SOURCES["synthetic_tool_task"]`).

    Args:
        spec: a `SourceSpec`; `spec.options` holds `kind` ("video" | "image", default "video"), `n` (pairs,
            default 100), `seed` (default 0) and `places` (the flash times or quadrants the prompts name, default
            all of `FLASH_TIMES` / `QUADRANTS`; the other candidate's flash or badge may be anywhere else).
        media_dir: folder for generated media (`media_dir/<spec.name>/<index>_{a,b}.{mp4,png}`).

    Returns:
        An iterator of `PreferencePair`s with ids "<kind>-<index>", labels alternating A / B, and the oracle in
        `meta` (see the module docstring).
    """
    opts = _options(spec)
    folder = Path(media_dir) / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    make = _video_pair if opts["kind"] == "video" else _image_pair
    for i in range(opts["n"]):
        rng = np.random.default_rng([opts["seed"], i])
        yield make(rng, i, Path(media_dir), f"{spec.name}/{i:05d}", opts["places"])


def _pair(i: int, kind: str, prompt: str, content: tuple, save, media_dir: Path, stem: str,
          meta: dict) -> PreferencePair:
    """The matching content (`content[0]`) in slot A for even i, in B for odd i (balanced labels)."""
    first = i % 2 == 0
    candidates = []
    for slot, obj in zip("ab", content if first else content[::-1]):
        rel = f"{stem}_{slot}.{'mp4' if kind == 'video' else 'png'}"
        save(obj, media_dir / rel)
        candidates.append(Candidate(media=[MediaItem(type=kind, path=rel, base_dir=media_dir)]))
    return PreferencePair(id=f"{kind}-{i:05d}", prompt=prompt, a=candidates[0], b=candidates[1],
                          label="A" if first else "B", meta={"generator": "synthetic_tool_task", **meta})


# ---------------------------------------------------------------------------------------------- videos

def _video_pair(rng: np.random.Generator, i: int, media_dir: Path, stem: str, places: tuple) -> PreferencePair:
    # str()/float(): numpy scalars would leak into the JSON-bound meta.
    time = float(rng.choice(places))
    decoy = float(rng.choice([t for t in FLASH_TIMES if t != time]))
    clips = (_ball_clip(rng, time), _ball_clip(rng, decoy))
    prompt = f"a grey ball that flashes red at about {time:.1f} s"
    meta = {"kind": "video", "evidence": {"window": [time - FLASH_HALF, time + FLASH_HALF], "time": time,
                                          "phrase": f"at about {time:.1f} s",
                                          "seen": {"match": "red", "other": "grey"}},
            "oracle_calls": [{"name": "select_frames", "arguments": {"timestamps": [time]}}], "decoy_time": decoy}
    return _pair(i, "video", prompt, clips, lambda clip, path: write_video(path, clip, FPS, options=_X264),
                 media_dir, stem, meta)


def _ball_clip(rng: np.random.Generator, flash: float) -> np.ndarray:
    """(FRAMES, 64, 64, 3) uint8: a ball drifting left to right, red in the 3 frames around `flash` s."""
    background = int(rng.integers(215, 246))
    radius = int(rng.integers(10, 14))
    y = VIDEO_SIZE // 2 + int(rng.integers(-6, 7))
    xs = np.linspace(radius + 4, VIDEO_SIZE - radius - 4, FRAMES)
    if rng.integers(2):
        xs = xs[::-1]
    yy, xx = np.mgrid[:VIDEO_SIZE, :VIDEO_SIZE]
    clip = np.full((FRAMES, VIDEO_SIZE, VIDEO_SIZE, 3), background, dtype=np.uint8)
    for k in range(FRAMES):
        inside = (yy - y) ** 2 + (xx - xs[k]) ** 2 <= radius ** 2
        red = abs(k / FPS - flash) <= FLASH_HALF + 1e-9
        clip[k][inside] = RED if red else GREY
    return clip


# ---------------------------------------------------------------------------------------------- images

def _image_pair(rng: np.random.Generator, i: int, media_dir: Path, stem: str, places: tuple) -> PreferencePair:
    names = list(QUADRANTS)
    named = str(rng.choice(list(places)))
    other = str(rng.choice([q for q in names if q != named]))
    centres = {q: _badge_centre(rng, q) for q in names}
    background = int(rng.integers(200, 236))
    noise = rng.integers(-12, 13, (IMAGE_SIZE, IMAGE_SIZE, 1))
    colours = {q: GREY for q in names}
    right = _tile(background, noise, centres, {**colours, named: RED, other: BLUE})
    wrong = _tile(background, noise, centres, {**colours, named: BLUE, other: RED})
    cx, cy = centres[named]
    half = BADGE / 2 / IMAGE_SIZE
    meta = {"kind": "image",
            "evidence": {"box": [round(cx - half, 4), round(cy - half, 4), round(cx + half, 4), round(cy + half, 4)],
                         "region": named, "max_area": MAX_CROP_AREA, "phrase": f"whose {named} badge",
                         "seen": {"match": "red", "other": "blue"}},
            "oracle_calls": [{"name": "crop", "arguments": {"box": list(QUADRANTS[named])}}], "decoy_region": other}
    return _pair(i, "image", f"a tile whose {named} badge is red", (right, wrong),
                 lambda im, path: im.save(path), media_dir, stem, meta)


def _badge_centre(rng: np.random.Generator, quadrant: str) -> tuple[float, float]:
    """A badge centre (fractions of the tile) near the middle of its quadrant, jittered."""
    x0, y0, x1, y1 = QUADRANTS[quadrant]
    return (float((x0 + x1) / 2 + rng.uniform(-0.08, 0.08)), float((y0 + y1) / 2 + rng.uniform(-0.08, 0.08)))


def _tile(background: int, noise: np.ndarray, centres: dict, colours: dict):
    """A noisy light tile with one square badge per quadrant (PIL RGB, IMAGE_SIZE square)."""
    from PIL import Image

    pixels = np.clip(background + noise, 0, 255).repeat(3, axis=2).astype(np.uint8)
    for quadrant, (cx, cy) in centres.items():
        x, y = round(cx * IMAGE_SIZE - BADGE / 2), round(cy * IMAGE_SIZE - BADGE / 2)
        pixels[y:y + BADGE, x:x + BADGE] = colours[quadrant]
    return Image.fromarray(pixels)
