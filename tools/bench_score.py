"""Benchmark the batch scoring engine against the naive per-pair loop of a model card, on generation pairs.

    python tools/bench_score.py                                   # 12 videos, each in 3 pairs: 18 pairs
    python tools/bench_score.py --videos 24 --batch-size 16 --workers 2 --repeats 3
    python tools/bench_score.py --family qwen3_vl --threads 1          # steadier on a busy machine

Builds a tiny random-weight VLM (`make_tiny_vlm`) and a head reward model on it, saves and reloads it with
`load_scorer`, writes small synthetic mp4 videos and generation pairs: videos come in groups of
`pairs-per-video + 1` that share one prompt, with every pair inside a group, so each video is in exactly
`pairs-per-video` pairs (as when several generations of one prompt are compared pairwise). Then it times:

  - engine: `scorer.score(records)`: each unique (prompt, video) unit decoded and encoded once, batched;
  - naive: for each pair, for each side, `load_video(cache=False)` + chat template + processor + one forward
    of the inner model + the head, one sequence at a time (what a user writes from a model card).

Both must give the same rewards (checked on every pair, atol 1e-4). Methods run interleaved, the media cache
cleared before every run so decoding is counted; each reports its best of `--repeats` (time.perf_counter).
On a CPU with the tiny model, decoding + the processor dominate, so the speed-up is mostly the dedup factor.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers.video_utils import VideoMetadata

from mmreward.data.media import clear_media_cache, load_video
from mmreward.data.schema import parse_record, read_jsonl, write_jsonl
from mmreward.data.synthetic import write_index_video
from mmreward.models.reward_model import RewardModel
from mmreward.models.tiny import make_tiny_vlm
from mmreward.scoring import load_scorer

PROMPTS = ("a red circle moving left", "a blue square on a white table", "a green triangle spinning",
           "a yellow ball bouncing up and down", "black text on a white board")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=12, help="number of videos (a multiple of pairs-per-video+1)")
    p.add_argument("--pairs-per-video", type=int, default=3, help="pairs each video appears in")
    p.add_argument("--frames", type=int, default=40, help="frames per video (lengths vary by +0..4)")
    p.add_argument("--fps", type=float, default=10.0, help="frame rate of the written videos")
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8, help="units per engine forward pass")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per method; the best is reported")
    p.add_argument("--family", default="qwen2_5_vl", choices=("qwen2_vl", "qwen2_5_vl", "qwen3_vl"))
    p.add_argument("--workers", type=int, default=0, help="also time the engine with this many DataLoader "
                                                          "workers (0: in-process only)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default); 1 gives "
                                                          "steadier numbers on a shared machine")
    args = p.parse_args(argv)
    group = args.pairs_per_video + 1
    if args.pairs_per_video < 1 or args.videos < group or args.videos % group:
        p.error(f"--videos must be a positive multiple of pairs-per-video + 1 = {group}")
    return args


def build_scorer(root: Path, family: str):
    """A tiny backbone + fresh two-layer head, saved like a trained checkpoint and loaded back."""
    tiny = make_tiny_vlm(root / "tiny", family=family)
    torch.manual_seed(0)
    RewardModel.build(tiny, dtype="float32").save_pretrained(root / "reward")
    return load_scorer(root / "reward")


def make_pairs(root: Path, args) -> list:
    """Videos in groups of k+1 sharing a prompt; all pairs within a group. Written to and read from JSONL."""
    videos = root / "videos"
    videos.mkdir()
    for v in range(args.videos):
        # Slightly different lengths so that sampled frames (and rewards) differ between videos.
        write_index_video(videos / f"v{v:03d}.mp4", args.frames + 2 * (v % 3), fps=args.fps,
                          height=args.height, width=args.width)
    group = args.pairs_per_video + 1
    records = []
    for g in range(args.videos // group):
        members = range(g * group, (g + 1) * group)
        prompt = f"{PROMPTS[g % len(PROMPTS)]} (scene {g})"
        for i in members:
            for j in members:
                if i < j:
                    side = [{"media": [{"type": "video", "path": f"videos/v{n:03d}.mp4"}]} for n in (i, j)]
                    records.append(parse_record({"id": f"g{g}-{i}-{j}", "prompt": prompt, "a": side[0],
                                                 "b": side[1], "label": "A"}, base_dir=root))
    write_jsonl(root / "pairs.jsonl", records)
    return read_jsonl(root / "pairs.jsonl")


def naive_reward(scorer, prompt: str, video_path: Path) -> float:
    """One sequence, written the plain way: decode, chat template, processor, inner model, last token, head."""
    processor, contract = scorer.processor, scorer.contract
    video = load_video(video_path, sampling=contract.video, cache=False)
    text = scorer.config.prompt_text.format(prompt=prompt, kind="video")
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
    chat = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    # The frames are already sampled and resized: no resampling, no second pixel cap. The metadata carries the
    # sampling rate: transformers 5 takes M-RoPE time (Qwen2.5-VL) and timestamps (Qwen3-VL) from it, not from
    # an `fps` keyword (ignored for tensor inputs: every video would be timed as 24 fps).
    metadata = VideoMetadata(total_num_frames=video.total_frames, fps=video.native_fps,
                             frames_indices=list(video.indices))
    videos_kwargs = {"do_sample_frames": False, "cap_pixels_per_frame": False, "video_metadata": [metadata],
                     "size": {"shortest_edge": contract.video.min_pixels,
                              "longest_edge": contract.video.max_pixels}}
    inputs = processor(text=[chat], videos=[video.frames], videos_kwargs=videos_kwargs, return_tensors="pt")
    with torch.inference_mode():
        hidden = scorer.backbone.model(**inputs).last_hidden_state
        return float(scorer.head(hidden[:, -1].float())[0, 0])


def naive_scores(scorer, records) -> list[tuple[float, float]]:
    """The model-card loop: every pair, both sides, one sequence at a time, nothing shared."""
    scorer.eval()
    out = []
    for record in records:
        out.append(tuple(naive_reward(scorer, record.prompt, side.media[0].local_path())
                         for side in (record.a, record.b)))
    return out


def engine_scores(scorer, records, batch_size: int, workers: int) -> list[tuple[float, float]]:
    results = scorer.score(records, batch_size=batch_size, num_workers=workers, progress=False)
    return [(r.score_a, r.score_b) for r in results]


def best_times(methods: dict, repeats: int) -> dict[str, tuple[float, object]]:
    """Best wall time of each method over `repeats` rounds, and its last result.

    Methods run interleaved (round robin) so that background load hits all of them alike; the media cache
    is cleared before every run so that decoding is always counted.
    """
    best: dict[str, tuple[float, object]] = {}
    for _ in range(repeats):
        for name, fn in methods.items():
            clear_media_cache()
            start = time.perf_counter()
            out = fn()
            seconds = time.perf_counter() - start
            best[name] = (min(seconds, best.get(name, (seconds, None))[0]), out)
            print(f"  {name:<24} {seconds:8.3f} s", flush=True)
    return best


def check_same(engine: list, naive: list, atol: float = 1e-4) -> float:
    """Largest |engine - naive| over all rewards; raise if any exceeds atol (the comparison must be honest)."""
    e, n = torch.tensor(engine, dtype=torch.float64), torch.tensor(naive, dtype=torch.float64)
    diff = float((e - n).abs().max())
    if not torch.allclose(e, n, rtol=0.0, atol=atol):
        worst = int((e - n).abs().amax(dim=1).argmax())
        raise AssertionError(f"engine and naive rewards differ (max |diff| {diff:.3g} > {atol}); "
                             f"pair {worst}: engine {engine[worst]}, naive {naive[worst]}")
    return diff


def report(rows: list[tuple[str, float]], n_pairs: int, naive_key: str) -> None:
    naive_s = dict(rows)[naive_key]
    print(f"\n{'method':<24} {'pairs':>6} {'seconds':>9} {'pairs/s':>9} {'vs naive':>9}")
    for name, seconds in rows:
        print(f"{name:<24} {n_pairs:6d} {seconds:9.3f} {n_pairs / seconds:9.2f} {naive_s / seconds:8.2f}x")


def run(args, root: Path) -> None:
    scorer = build_scorer(root, args.family)
    records = make_pairs(root, args)
    n_units = len({(r.prompt, str(s.media[0].local_path())) for r in records for s in (r.a, r.b)})
    s = scorer.contract.video
    print(f"{args.family}: {len(records)} pairs over {args.videos} videos ({n_units} unique units, "
          f"{2 * len(records)} naive sequences); {args.frames}+ frames {args.height}x{args.width} "
          f"@ {args.fps:g} fps, sampled at {s.fps or s.nframes} {'fps' if s.fps else 'frames'}; "
          f"torch threads {torch.get_num_threads()}", flush=True)
    # Untimed warm-up of both paths (imports, decoder and kernel initialisation).
    engine_scores(scorer, records[:1], args.batch_size, 0)
    naive_scores(scorer, records[:1])
    methods = {f"engine (workers={w})": lambda w=w: engine_scores(scorer, records, args.batch_size, w)
               for w in [0] + ([args.workers] if args.workers > 0 else [])}
    methods["naive loop"] = lambda: naive_scores(scorer, records)
    best = best_times(methods, args.repeats)
    naive = best["naive loop"][1]
    diff = max(check_same(out, naive) for name, (_, out) in best.items() if name != "naive loop")
    print(f"rewards agree on all {len(records)} pairs (max |engine - naive| = {diff:.2e})")
    rows = [(name, seconds) for name, (seconds, _) in best.items()]
    report(rows, len(records), "naive loop")
    print(f"\nengine / naive (pairs/s ratio, workers=0): {rows[-1][1] / rows[0][1]:.2f}x")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench_score_") as tmp:
        run(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
