"""Closed loop on CPU: a tiny VLM policy trained with TRL GRPO, its reward served by `mmreward serve`.

    python tools/closed_loop_grpo.py [--steps 40] [--rm-steps 100] [--sft-steps 40] [--seed 0]

1. Trains a tiny head reward model (random-weight Qwen2.5-VL) with the Bradley–Terry loss to prefer the answer
   that names the colour of the shape in the image ("It is red." over "It is blue." for a red square, ...) and
   over garbled phrases made of the same tokens ("It red.", " is red red."): the pairs cover what the
   vocabulary-restricted policy can say.
2. Serves it with `mmreward serve` (a child process on 127.0.0.1).
3. Warm-starts a tiny random-weight Qwen3-VL policy with a few SFT steps on the candidate answers, every colour
   equally often whatever the image, so that its samples are answers the reward model has seen (a random policy
   emits token noise that no reward model ranks usefully) and all of them are wrong but one in four.
4. Trains the policy with TRL's GRPOTrainer on "What colour is the shape?" prompts with the image, its reward
   `MMRewardFunc(url)` (every reward crosses HTTP). The policy's vocabulary is restricted to the answers' tokens
   and the end of turn (a frozen bias on its LM head, so sampling and the GRPO loss see the same distribution),
   sampled at temperature 1 (exploring: the warm start leaves one colour in four).
5. Prints the policy's mean reward, and how often it answers exactly right, over the first and the last steps.

Everything is seeded. A demo / benchmark, not a unit test: a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 60), "yellow": (230, 210, 40)}
QUESTION = "What colour is the shape?"


def answer(colour: str) -> str:
    """The policy's candidate answer naming a colour (the reward model is trained on exactly these)."""
    return f"It is {colour}."


def garbled(rng: random.Random) -> str:
    """A phrase the restricted policy can emit that is not a candidate answer ("It red.", " is red red.", ...)."""
    pieces = ["I", "t", " is", *(f" {c}" for c in COLOURS), "."]
    while True:
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 7)))
        if text not in {answer(c) for c in COLOURS}:
            return text


def shape_image(colour: str, seed: int):
    """A white canvas with one filled square of the colour (position varies with the seed)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (56, 56), "white")
    x, y = rng.randint(4, 24), rng.randint(4, 24)
    ImageDraw.Draw(image).rectangle([x, y, x + 24, y + 24], fill=COLOURS[colour])
    return image


def train_reward_model(out: Path, steps: int, seed: int, colours: list[str]) -> Path:
    """A head reward model that prefers the answer naming the shape's colour (BT loss, plain torch loop)."""
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
        # The right answer beats a wrong colour and, as often, a garbled phrase from the same tokens: without
        # those, GRPO finds garbled outputs the reward model never saw and happens to score high.
        colour = rng.choice(colours)
        worse = answer(rng.choice([c for c in COLOURS if c != colour])) if i % 2 else garbled(rng)
        return parse_record({"id": str(i), "prompt": QUESTION, "media": [media_item(shape_image(colour, i))],
                             "a": {"text": answer(colour)}, "b": {"text": worse}, "label": "A"})

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
        if step % 20 == 0 or step == steps - 1:
            accuracy = (rewards[0::2] > rewards[1::2]).float().mean().item()
            print(f"reward model step {step}: loss {loss.item():.3f}, batch accuracy {accuracy:.2f}", flush=True)
    model.eval()
    return model.save_pretrained(out / "rm")


def restrict_vocabulary(model, tokenizer) -> None:
    """Restrict the policy to the candidate answers' tokens and the end of turn: a frozen LM-head bias.

    A bias (0 for those tokens, -1e4 for the rest), not a sampling-time mask: TRL's GRPO loss projects hidden
    states through the head's weight and bias itself (fused LM head), so generation and the loss's
    log-probabilities see the same distribution. With ``suppress_tokens`` alone, negative advantages push
    probability onto tokens that are never sampled and the policy's entropy grows without bound.
    """
    import torch

    allowed = sorted({i for c in COLOURS for i in tokenizer(answer(c))["input_ids"]} | {tokenizer.eos_token_id})
    head = model.get_output_embeddings()
    bias = torch.full((head.out_features,), -1e4)  # finite: 0 * log(p) stays 0 in TRL's entropy
    bias[allowed] = 0.0
    head.bias = torch.nn.Parameter(bias, requires_grad=False)


def warm_start_policy(out: Path, steps: int, seed: int, colours: list[str]) -> Path:
    """A tiny Qwen3-VL policy SFT-ed to answer with a uniformly random candidate answer (any colour, any image).

    The loss covers the answer and its end-of-turn token only. The colour is drawn independently of the image,
    so the warm start teaches the answer's form, not which colour is right: that is left for GRPO to learn.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mmreward.models.tiny import make_tiny_vlm

    torch.manual_seed(seed)
    rng = random.Random(seed + 1)
    path = make_tiny_vlm(out / "tiny-policy", family="qwen3_vl", seed=seed)
    model, processor = AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)
    restrict_vocabulary(model, processor.tokenizer)
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    prompt = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        images = [[shape_image(colours[k % len(colours)], 10_000 + step * 8 + k)] for k in range(8)]
        texts = [prompt + answer(rng.choice(list(COLOURS))) + "<|im_end|>" for _ in images]
        batch = processor(text=texts, images=images, return_tensors="pt", padding=True)
        # All prompts here have the same length (one 56x56 image, one question), so the prompt mask is a slice.
        prompt_len = processor(text=[prompt], images=[images[0]], return_tensors="pt")["input_ids"].shape[1]
        labels = batch["input_ids"].clone()
        labels[:, :prompt_len] = -100
        labels[batch["attention_mask"] == 0] = -100
        loss = model(**batch, labels=labels).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
        if step % 10 == 0 or step == steps - 1:
            print(f"policy warm start step {step}: loss {loss.item():.3f}", flush=True)
    model.get_output_embeddings().bias = None  # the checkpoint's head has no bias; GRPO restricts it again
    model.save_pretrained(out / "policy-sft")
    processor.save_pretrained(out / "policy-sft")
    return out / "policy-sft"


def serve(model: Path, port: int, log: Path) -> subprocess.Popen:
    """`mmreward serve` on 127.0.0.1:port, once /health answers; its output goes to `log`."""
    import httpx

    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "mmreward.cli", "serve", "--model", str(model), "--port",
                                 str(port), "--max-wait-ms", "2"], stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    tail = log.read_text(errors="replace")[-2000:]
    raise SystemExit(f"mmreward serve did not start (exit code {proc.wait()}); its log {log} ends:\n{tail}")


class RightAnswer:
    """Readout logged with weight 0 (not a reward): 1.0 where the completion is exactly the right answer.

    Keeps every step's completions so that the script can show what the policy ends up saying.
    """

    __name__ = "right_answer"

    def __init__(self):
        self.completions: list[list[str]] = []

    def __call__(self, prompts, completions, colour, **kwargs) -> list[float]:
        from mmreward.integrations.trl import completion_text

        texts = [completion_text(c).strip() for c in completions]
        self.completions.append(texts)
        return [float(text == answer(c)) for text, c in zip(texts, colour)]


def train_policy(policy: Path, out: Path, url: str, args: argparse.Namespace, colours: list[str]) -> dict:
    """GRPO on the warm-started policy; per-step lists of "reward" (served RM), "accuracy" and "completions"."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from mmreward.integrations.trl import MMRewardFunc

    processor = AutoProcessor.from_pretrained(policy)
    rows = [{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}],
             "images": [shape_image(colours[i % len(colours)], i)], "colour": colours[i % len(colours)]}
            for i in range(64)]
    config = GRPOConfig(output_dir=str(out / "grpo"), per_device_train_batch_size=8, num_generations=8,
                        max_completion_length=8, max_steps=args.steps, learning_rate=args.lr, use_cpu=True,
                        report_to="none", bf16=False, disable_tqdm=True, logging_steps=1, seed=args.seed,
                        save_strategy="no", temperature=args.temperature, beta=0.0, reward_weights=[1.0, 0.0])
    readout = RightAnswer()
    model = AutoModelForImageTextToText.from_pretrained(policy)
    restrict_vocabulary(model, processor.tokenizer)
    trainer = GRPOTrainer(model=model, processing_class=processor,
                          reward_funcs=[MMRewardFunc(url), readout], args=config,
                          train_dataset=Dataset.from_list(rows))
    trainer.train()
    logs = [log for log in trainer.state.log_history if "reward" in log]
    return {"reward": [log["reward"] for log in logs],
            "accuracy": [log["rewards/right_answer/mean"] for log in logs], "completions": readout.completions}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="GRPO steps")
    parser.add_argument("--rm-steps", type=int, default=100, help="reward model training steps")
    parser.add_argument("--sft-steps", type=int, default=40, help="policy warm-start (SFT) steps")
    parser.add_argument("--lr", type=float, default=2e-3, help="GRPO learning rate")
    parser.add_argument("--temperature", type=float, default=1.0, help="GRPO sampling temperature")
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
    policy = warm_start_policy(out, args.sft_steps, args.seed, colours)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = serve(model, port, out / "serve.log")
    try:
        history = train_policy(policy, out, f"http://127.0.0.1:{port}", args, colours)
    finally:
        proc.terminate()
        proc.wait(60)
    w = args.window
    reward, accuracy = history["reward"], history["accuracy"]
    print(f"GRPO steps: {len(reward)}; mean reward over the first {w} steps: {_mean(reward[:w]):.4f}, over the "
          f"last {w}: {_mean(reward[-w:]):.4f}; exactly the right answer in {_mean(accuracy[:w]):.0%} of the first "
          f"steps' completions, {_mean(accuracy[-w:]):.0%} of the last ({time.perf_counter() - start:.0f} s in all, "
          f"load average {os.getloadavg()[0]:.1f})")
    last = Counter(text for step in history["completions"][-w:] for text in step)
    print("most common completions over the last steps: " + ", ".join(f"{t!r} x{n}" for t, n in last.most_common(4)))


if __name__ == "__main__":
    main()
