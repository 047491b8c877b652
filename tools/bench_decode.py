"""Benchmark video loading: sampled frames/s per process for each backend and for qwen-vl-utils, the
scaling with 1/2/4 decode worker processes, peak RSS, and the exact resize against torchvision's.

    python tools/bench_decode.py                                   # 10 s, 1280x720, 30 fps, GOP 2 s
    python tools/bench_decode.py --duration 10 --height 2160 --width 3840 --workers 1 2   # 4K memory
    python tools/bench_decode.py --markdown                         # also print the README table

Generates a test video once (textured, moving content plus film grain, so the codec has real work;
cached under --cache-dir). Every measurement runs in a fresh spawned process with the media cache off
and one torch thread, so its peak RSS (VmHWM) is its own; "growth" is the peak of the timed calls
minus the RSS after imports and one warm-up call (the peak is reset in between). Rows:
  - ``load_video <backend>``: our decode of the sampled frames + resize to the qwen-vl-utils budget;
  - ``qwen-vl-utils <reader>``: ``fetch_video`` on the same request with each of its readers that works;
  - ``N workers``: N processes loading the clip in a loop at once (default backend); aggregate frames/s;
  - ``resize``: the sampled frames resized as qwen-vl-utils does (torchvision, whole video, float32) and
    per frame (``media.resize.resize_frame``), with the largest pixel difference between the two.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from mmreward.data.synthetic import index_frame, write_video

GPU_FRAMES_PER_S = 200  # one H100 scoring Qwen2.5-VL-7B at 50% MFU (DESIGN.md)


def make_video(args) -> Path:
    """A scrolling blocky texture plus film grain (~2.7 Mbit/s at 720p30, typical of web video) and an
    index patch; written once and reused from --cache-dir."""
    cache = Path(args.cache_dir).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"bench_v2_{args.duration}s_{args.width}x{args.height}_{args.fps}fps_gop{args.gop}.mp4"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (args.height // 16 + 2, args.width // 16 + 2, 3), dtype=np.uint8)
    texture = np.kron(small, np.ones((16, 16, 1), dtype=np.uint8))
    texture = np.concatenate([texture, texture], axis=0)
    texture = np.concatenate([texture, texture], axis=1)  # tiled twice so any scroll offset fits
    # Grain that changes every frame: without it the codec predicts almost everything and decoding
    # is unrealistically cheap.
    grain = [rng.integers(-8, 9, (args.height, args.width, 1), dtype=np.int16) for _ in range(7)]

    def frames():
        for i in range(int(args.duration * args.fps)):
            dy, dx = (2 * i) % (texture.shape[0] // 2), (3 * i) % (texture.shape[1] // 2)
            frame = texture[dy : dy + args.height, dx : dx + args.width] + grain[i % len(grain)]
            frame = np.clip(frame, 0, 255).astype(np.uint8)
            frame[:64, :96] = index_frame(i % 4096, 64, 96)
            yield frame

    print(f"writing {path} ...", flush=True)
    tmp = path.with_suffix(".tmp.mp4")
    write_video(tmp, frames(), args.fps, gop=args.gop, options={"preset": "veryfast", "crf": "23"})
    tmp.rename(path)
    return path


# ------------------------------------------------------------------------------ in the child process
def _status(key: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0


def _loader(kind: str, path: str, request: dict, threads: int):
    """A no-argument callable loading the clip one way; returns the number of frames it produced."""
    if kind.startswith("qwen-vl-utils "):
        from qwen_vl_utils import vision_process as qv

        reader = kind.split()[1]
        qv.get_video_reader_backend = lambda: reader  # fetch_video otherwise picks one at first use
        return lambda: int(qv.fetch_video({"video": path, **request}).shape[0])
    from mmreward.data.media import load_video

    backend = None if kind == "load_video default" else kind.split()[1]
    return lambda: len(load_video(path, backend=backend, cache=False, num_threads=threads, **request).indices)


def _child(kind: str, path: str, request: dict, threads: int, repeats: int, queue, barrier=None) -> None:
    """Measure one loader in this (fresh) process; put a dict of results on ``queue``."""
    import torch

    torch.set_num_threads(1)  # workers parallelise across videos, as in a DataLoader
    try:
        load = _loader(kind, path, request, threads)
        load()  # warm-up: library initialisation is not per-video cost
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM: "growth" is the measured calls' own peak
        except OSError:
            pass
        base = _status("VmRSS:")
        if barrier is not None:
            barrier.wait()
        start, times, frames = time.monotonic(), [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            frames += load()
            times.append(time.perf_counter() - t0)
        queue.put(dict(kind=kind, frames=frames, seconds=statistics.median(times) * repeats, start=start,
                       end=time.monotonic(), peak=_status("VmHWM:"), growth=_status("VmHWM:") - base))
    except Exception as e:  # a reader that is not installed: reported, the run goes on
        queue.put(dict(kind=kind, error=f"{type(e).__name__}: {str(e)[:80]}"))


def _run(kind: str, path: Path, args, request: dict, workers: int = 1) -> list[dict]:
    ctx = mp.get_context("spawn")
    queue, barrier = ctx.Queue(), ctx.Barrier(workers) if workers > 1 else None
    procs = [ctx.Process(target=_child, args=(kind, str(path), request, args.threads, args.repeats, queue,
                                              barrier)) for _ in range(workers)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    return results


# ------------------------------------------------------------------------------------------- report
def per_process(path: Path, args, request: dict) -> list[dict]:
    kinds = ["load_video decord", "load_video pyav", "load_video default"]
    kinds += [f"qwen-vl-utils {r}" for r in ("decord", "torchvision", "torchcodec")]
    rows = []
    for kind in kinds:
        (r,) = _run(kind, path, args, request)
        rows.append(r)
        if "error" in r:
            print(f"  {kind:<28} unavailable ({r['error']})", flush=True)
        else:
            print(f"  {kind:<28} {r['frames'] / r['seconds']:8.1f} frames/s   peak RSS {r['peak'] / 1e9:5.2f} GB"
                  f"  (+{r['growth'] / 1e9:.2f} GB)", flush=True)
    return rows


def scaling(path: Path, args, request: dict) -> list[tuple[int, float, int]]:
    """(workers, aggregate frames/s, largest peak RSS of one worker) for each worker count."""
    rows = []
    for n in args.workers:
        results = _run("load_video default", path, args, request, workers=n)
        bad = [r["error"] for r in results if "error" in r]
        if bad:
            raise SystemExit(f"worker failed: {bad[0]}")
        wall = max(r["end"] for r in results) - min(r["start"] for r in results)
        rate = sum(r["frames"] for r in results) / wall
        rows.append((n, rate, max(r["peak"] for r in results)))
        print(f"  {n} worker(s): {rate:8.1f} frames/s in total, {rate / n:6.1f} per worker", flush=True)
    return rows


def resize_check(path: Path, request: dict, repeats: int) -> dict:
    """Time torchvision's whole-video resize (qwen-vl-utils) and the per-frame exact one on the sampled
    frames of the clip; report the largest difference in pixel levels."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    from mmreward.data.media import VideoSampling, plan
    from mmreward.data.media.backends import PyAVReader, VideoSource
    from mmreward.data.media.resize import resize_frame
    from mmreward.data.media.sampling import video_frame_size

    torch.set_num_threads(1)
    reader = PyAVReader(VideoSource(str(path), path), 1)
    try:
        p = plan(str(path), VideoSampling(**request), None, None, reader.index)
        frames = reader.read(p.indices)
    finally:
        reader.close()
    h, w = video_frame_size(VideoSampling(**request), len(p.indices), *frames.shape[1:3])
    video = torch.from_numpy(frames).permute(0, 3, 1, 2)  # what qwen-vl-utils hands torchvision

    def exact():
        return TF.resize(video, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)

    def banded():
        return torch.stack([resize_frame(f, h, w) for f in frames])

    out = {}
    for name, fn in (("torchvision whole video", exact), ("per frame, banded", banded)):
        fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            result = fn()
        out[name] = ((time.perf_counter() - t0) / repeats / len(frames), result)
    diff = (out["torchvision whole video"][1].int() - out["per frame, banded"][1].int()).abs().max().item()
    for name, (seconds, _) in out.items():
        print(f"  resize {name:<24} {seconds * 1000:7.2f} ms/frame ({frames.shape[1]}x{frames.shape[2]} -> {h}x{w})")
    print(f"  largest difference: {diff} levels")
    return {"ms": {k: v[0] * 1000 for k, v in out.items()}, "max_diff": diff, "size": (h, w)}


def markdown(args, rows, scale, resize) -> str:
    lines = [f"`{' '.join(['python tools/bench_decode.py', *sys.argv[1:]])}` — {args.duration:g} s "
             f"{args.width}x{args.height} H.264 at {args.fps:g} fps, sampled at {args.sample_fps:g} fps; "
             "one process, one torch thread, cache off", "",
             "| loader | sampled frames/s | peak RSS | growth |", "|---|---:|---:|---:|"]
    for r in rows:
        if "error" not in r:
            lines.append(f"| {r['kind']} | {r['frames'] / r['seconds']:.1f} | {r['peak'] / 1e9:.2f} GB "
                         f"| +{r['growth'] / 1e9:.2f} GB |")
    lines += ["", "| decode workers | frames/s total | per worker | peak RSS per worker |", "|---:|---:|---:|---:|"]
    lines += [f"| {n} | {rate:.1f} | {rate / n:.1f} | {peak / 1e9:.2f} GB |" for n, rate, peak in scale]
    if scale:
        best = max(rate / n for n, rate, _ in scale)
        lines += ["", f"At {best:.0f} frames/s per worker, {GPU_FRAMES_PER_S} frames/s for one GPU needs "
                  f"{math.ceil(GPU_FRAMES_PER_S / best)} decode workers (one core each)."]
    ms = resize["ms"]
    lines += ["", f"Resize to {resize['size'][0]}x{resize['size'][1]}: torchvision whole-video "
              f"{ms['torchvision whole video']:.1f} ms/frame, per-frame banded {ms['per frame, banded']:.1f} "
              f"ms/frame; largest difference {resize['max_diff']} levels."]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--gop", type=int, default=None, help="keyframe interval in frames (default 2 s)")
    p.add_argument("--sample-fps", type=float, default=2.0, help="frames sampled per second of video")
    p.add_argument("--threads", type=int, default=1, help="decoder threads per worker")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cache-dir", default="~/.cache/mmreward/bench")
    p.add_argument("--markdown", action="store_true", help="print the README table at the end")
    args = p.parse_args(argv)
    args.gop = args.gop or int(round(2 * args.fps))
    path = make_video(args)
    request = {"fps": args.sample_fps}
    print(f"video: {path.name}; sampling {request}; decoder threads {args.threads}")
    print("per process:")
    rows = per_process(path, args, request)
    print("decode worker processes (default backend):")
    scale = scaling(path, args, request)
    print("resize of the sampled frames:")
    resize = resize_check(path, request, args.repeats)
    if args.markdown:
        print("\n" + markdown(args, rows, scale, resize))
    with open(Path(args.cache_dir).expanduser() / "last_bench_decode.json", "w") as f:
        json.dump({"rows": rows, "scaling": scale, "resize": resize["ms"], "max_diff": resize["max_diff"]}, f)


if __name__ == "__main__":
    sys.exit(main())
