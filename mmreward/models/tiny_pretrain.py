"""Give a random tiny model the one generic skill every pretrained VLM has: copying a token from its context.

    pretrain_copying("/tmp/tiny-qwen2_5_vl", steps=300)      # in place; ~20 s on 2 CPU cores for the tiny size

Real judges start from a pretrained VLM, which repeats a time or a name from its prompt without being taught to.
A tiny model with random weights has no such circuit, and learning one from a few hundred judge traces is the slow
part (measured on the judge demo: after 300 SFT steps the tiny judge wrote the same flash time whatever the prompt
said). This trains the language model alone, for a few hundred steps, on random token strings written twice (the
classic induction-head task: predict the second copy from the first), then saves it back. The strings are drawn
uniformly from the tokenizer's ordinary tokens: no task data, no prompt text, no labels of any task, so whatever
the model later learns about a task it learns from that task's training. Text only: the vision tower is untouched.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def pretrain_copying(model_dir: str | Path, *, steps: int = 300, batch_size: int = 32, half_length: int = 48,
                     learning_rate: float = 3e-3, seed: int = 0) -> dict[str, float]:
    """Train a checkpoint's language model to copy random token strings, in place.

    Args:
        model_dir: a checkpoint directory (`AutoModelForImageTextToText` + its tokenizer), e.g. from `make_tiny_vlm`.
        steps: optimizer steps (AdamW, constant learning rate, gradient norm clipped at 1).
        batch_size: strings per step.
        half_length: tokens per string; each sequence is the string twice, and the loss is on the second copy
            (its first token excepted: nothing in the context predicts it).
        learning_rate: AdamW learning rate.
        seed: seeds the strings.

    Returns:
        {"loss": last step's loss, "copy_accuracy": share of second-copy tokens predicted exactly at the last step}.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    model_dir = Path(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    vocab_size = model.get_input_embeddings().num_embeddings
    special = set(tokenizer.all_special_ids)
    ordinary = torch.tensor([i for i in range(min(len(tokenizer), vocab_size)) if i not in special])
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    model.train()
    loss, accuracy = float("nan"), 0.0
    for step in range(steps):
        string = ordinary[torch.randint(len(ordinary), (batch_size, half_length), generator=generator)]
        ids = torch.cat([string, string], dim=1)
        labels = ids.clone()
        labels[:, :half_length + 1] = -100
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step == steps - 1 or step % 100 == 0:
            with torch.no_grad():
                predicted = out.logits[:, half_length:-1].argmax(-1)
                accuracy = (predicted == ids[:, half_length + 1:]).float().mean().item()
            loss = out.loss.item()
            logger.info("copy pretraining step %d/%d: loss %.3f, copy accuracy %.3f", step + 1, steps, loss, accuracy)
    model.eval()
    model.save_pretrained(model_dir)
    return {"loss": loss, "copy_accuracy": accuracy}
