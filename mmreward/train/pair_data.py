"""Training data for reward models: records -> encoded units (in DataLoader workers) -> one padded batch.

A pair becomes two units (A and B) — or one unit for a pairwise yes-token scorer, whose output is already
"A better than B"; a pointwise record with ratings becomes one unit with regression targets. Media shared by
both sides of a pair are decoded once (the media cache), and every unit of a batch is padded into one forward.
"""

from __future__ import annotations

import math

import torch

from mmreward.data.collate import pad_batch
from mmreward.data.schema import PreferencePair
from mmreward.errors import DataError
from mmreward.train.losses import labels_tensor


class RewardDataset(torch.utils.data.Dataset):
    """Records encoded on demand with a scorer's picklable encoder (so worker processes decode media)."""

    def __init__(self, records: list, scorer, dimensions: list[str]):
        self.records = records
        self.plans = [scorer.plan(r) for r in records]
        self.encoder = scorer.encoder()
        self.dimensions = dimensions

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record, plan = self.records[index], self.plans[index]
        try:
            units = [self.encoder(u) for u in plan.units]
        except DataError as err:
            # Mid-training a record cannot be dropped without changing the run; say which one and what to do.
            raise DataError(f"record {record.id}: {err}; fix or remove this record (missing files are found before "
                            "training: data_on_error: skip drops those records, `mmreward data validate FILE "
                            "--check-media` lists them)") from err
        if isinstance(record, PreferencePair):
            labels = labels_tensor([record.dimensions], self.dimensions, overall=[record.label])[0]
            margin = float(record.margin) if record.margin is not None else 0.0
            return {"kind": plan.combine, "units": units, "labels": labels, "margin": margin}
        targets = [float(record.scores.get(d, math.nan)) for d in self.dimensions]
        return {"kind": "pointwise", "units": units, "targets": torch.tensor(targets)}


class RewardCollator:
    """Pads all units of a batch together and records where each pair's A and B rows are.

    Output keys: the processor tensors of every unit (rows: (N, T)); `pair_a`, `pair_b`: (P,) row indices, with
    -1 for "no B row" (pairwise scorers: B's reward is 0); `labels`: (P, D); `margin`: (P,); `point_rows`: (Q,);
    `targets`: (Q, D).
    """

    def __init__(self, pad_token_id: int, n_dims: int):
        self.pad_token_id = pad_token_id
        self.n_dims = n_dims

    def __call__(self, items: list[dict]) -> dict:
        encodings, pair_a, pair_b, labels, margins, point_rows, targets = [], [], [], [], [], [], []
        for item in items:
            start = len(encodings)
            encodings.extend(item["units"])
            if item["kind"] == "pointwise":
                point_rows.append(start)
                targets.append(item["targets"])
                continue
            pair_a.append(start)
            pair_b.append(start + 1 if item["kind"] == "pair" else -1)
            labels.append(item["labels"])
            margins.append(item["margin"])
        batch = pad_batch(encodings, self.pad_token_id)
        batch["pair_a"] = torch.tensor(pair_a, dtype=torch.long)
        batch["pair_b"] = torch.tensor(pair_b, dtype=torch.long)
        batch["labels"] = torch.stack(labels) if labels else torch.zeros(0, self.n_dims, dtype=torch.long)
        batch["margin"] = torch.tensor(margins, dtype=torch.float32)
        batch["point_rows"] = torch.tensor(point_rows, dtype=torch.long)
        batch["targets"] = torch.stack(targets) if targets else torch.zeros(0, self.n_dims)
        return batch


BOOKKEEPING_KEYS = ("pair_a", "pair_b", "labels", "margin", "point_rows", "targets")


def split_rewards(rewards: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(r_a, r_b), each (P, D), from the rewards of all rows (N, D); a missing B row counts as 0."""
    r_a = rewards[batch["pair_a"]]
    has_b = batch["pair_b"] >= 0
    r_b = torch.where(has_b[:, None], rewards[batch["pair_b"].clamp_min(0)], torch.zeros_like(r_a))
    return r_a, r_b
