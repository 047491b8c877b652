"""Closed loop on CPU: a tiny VLM policy trained with TRL GRPO, its reward served by `mmreward serve`.

    python tools/closed_loop_grpo.py [--steps 40] [--rm-steps 150] [--seed 0]

1. Trains a tiny head reward model (random-weight Qwen2.5-VL) with the Bradley–Terry loss to prefer answers
   that name the colour of the shape in the image ("red" over "blue" for a red square, and so on).
2. Serves it with `mmreward serve` (a child process on 127.0.0.1).
3. Trains a tiny Qwen3-VL policy with TRL's GRPOTrainer on "What colour is the shape?" prompts with the image,
   its reward `MMRewardFunc(url)` — every reward crosses HTTP.
4. Prints the policy's mean reward over the first and the last steps (seeded).

A demo / benchmark, not a unit test: minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 60), "yellow": (230, 210, 40)}
QUESTION = "What colour is the shape?"


def shape_image(colour: str, seed: int):
    """A white canvas with one filled square of the colour (position varies with the seed)."""
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (56, 56), "white")
    x, y = rng.randint(4, 24), rng.randint(4, 24)
    ImageDraw.Draw(image).rectangle([x, y, x + 24, y + 24], fill=COLOURS[colour])
    return image


def train_reward_model(out: Path, steps: int, seed: int, colours: list[str]) -> Path:
    """A head reward model that prefers the answer naming the shape's colour (BT loss, plain torch loop)."""
    import random

    import torch

    from mmreward.data.collate import pad_batch
    from mmreward.data.schema import parse_record
    from mmreward.integrations.client import media_item
    from mmreward.models.reward_model import RewardModel
    from mmreward.models.tiny import make_tiny_vlm
    from mmreward.train.losses import bt_loss

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = RewardModel.build(make_tiny_vlm(out / "tiny-rm", family="qwen2_5_vl", seed=seed))
    encode = model.encoder()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)

    def pair(i):
        colour = rng.choice(colours)
        wrong = rng.choice([c for c in COLOURS if c != colour])
        return parse_record({"id": str(i), "prompt": QUESTION, "media": [media_item(shape_image(colour, i))],
                             "a": {"text": f"It is {colour}."}, "b": {"text": f"It is {wrong}."}, "label": "A"})

    model.train()
    for step in range(steps):
        batch = [pair(step * 8 + k) for k in range(8)]
        units = [u for record in batch for u in model.plan(record).units]
        encoded = pad_batch([encode(u) for u in units], model.processor.tokenizer.pad_token_id)
        rewards = model(**encoded)[:, 0]
        loss = bt_loss(rewards[0::2], rewards[1::2], torch.ones(len(batch)))
        optim.zero_grad()
        loss.backward()
        optim.step()
        if step % 25 == 0 or step == steps - 1:
            accuracy = (rewards[0::2] > rewards[1::2]).float().mean().item()
            print(f"reward model step {step}: loss {loss.item():.3f}, batch accuracy {accuracy:.2f}", flush=True)
    model.eval()
    return model.save_pretrained(out / "rm")


def serve(model: Path, port: int) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "mmreward.cli", "serve", "--model", str(model), "--port",
                             str(port), "--max-wait-ms", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("mmreward serve did not start")


def train_policy(out: Path, url: str, steps: int, seed: int, colours: list[str]) -> list[float]:
    """GRPO on the tiny policy; returns the mean reward of every step."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from mmreward.integrations.trl import MMRewardFunc
    from mmreward.models.tiny import make_tiny_vlm

    rows = [{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}],
             "images": [shape_image(colours[i % len(colours)], i)]} for i in range(64)]
    path = make_tiny_vlm(out / "tiny-policy", family="qwen3_vl", seed=seed)
    args = GRPOConfig(output_dir=str(out / "grpo"), per_device_train_batch_size=8, num_generations=8,
                      max_completion_length=6, max_steps=steps, learning_rate=5e-4, use_cpu=True, report_to="none",
                      bf16=False, disable_tqdm=True, logging_steps=1, seed=seed, save_strategy="no",
                      temperature=1.0, beta=0.0)
    trainer = GRPOTrainer(model=AutoModelForImageTextToText.from_pretrained(path),
                          processing_class=AutoProcessor.from_pretrained(path), reward_funcs=[MMRewardFunc(url)],
                          args=args, train_dataset=Dataset.from_list(rows))
    trainer.train()
    return [log["reward"] for log in trainer.state.log_history if "reward" in log]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="GRPO steps")
    parser.add_argument("--rm-steps", type=int, default=60, help="reward model training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--colours", default="red",
                        help="comma-separated shape colours (one colour: the tiny models learn it in minutes on CPU)")
    parser.add_argument("--window", type=int, default=10, help="steps averaged at the start and at the end")
    parser.add_argument("--out", help="working folder (default: a new temporary folder)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(args.out or tempfile.mkdtemp(prefix="mmreward-closed-loop-"))
    start = time.perf_counter()
    colours = [c for c in args.colours.split(",") if c]
    unknown = [c for c in colours if c not in COLOURS]
    if unknown or not colours:
        raise SystemExit(f"--colours: choose from {', '.join(COLOURS)}")
    model = train_reward_model(out, args.rm_steps, args.seed, colours)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = serve(model, port)
    try:
        rewards = train_policy(out, f"http://127.0.0.1:{port}", args.steps, args.seed, colours)
    finally:
        proc.terminate()
        proc.wait(60)
    first, last = rewards[:args.window], rewards[-args.window:]
    print(f"GRPO steps: {len(rewards)}; mean reward over the first {len(first)} steps: "
          f"{sum(first) / len(first):.4f}; over the last {len(last)}: {sum(last) / len(last):.4f} "
          f"({time.perf_counter() - start:.0f} s in all)")


if __name__ == "__main__":
    main()
