"""CLIP baseline scorer over any open_clip model: CLIPScore, or the VLM-RM goal–baseline projected reward.

    scorer = ClipScorer.from_open_clip("ViT-B-32", "openai")                       # CLIPScore (raw cosine)
    scorer = ClipScorer.from_open_clip("ViT-L-14", "openai", mode="vlmrm", alpha=0.5,
                                       baseline_prompts=["a video", "a photo"])    # Rocamonde et al. 2023
    results = scorer.score(read_jsonl("pairs.jsonl"))                             # or `mmreward score --scorer clip`

What is scored against what:

- a candidate with media (generation pairs, pointwise records without a response): the candidate's images /
  video frames against the record prompt; shared (top-level) media of such a record is context and not scored.
- a candidate that is only text, on a record with shared media (response pairs, pointwise records with a
  response): the shared image / video frames against the *response text*, reward = cos(image, response) in
  every mode (goal/baseline prompts describe target media, not answers).

Rewards (x: the L2-normalised embedding of one image or frame, t: of the text):

- "clipscore": cos(x, t), raw by default; ``scale=2.5`` gives the classic CLIPScore w·max(cos, 0) (Hessel et
  al. 2021).
- "vlmrm": `projected_reward` with g the mean of the goal-prompt embeddings (the record prompt when no goal
  prompts are given) and b the mean of the baseline-prompt embeddings.

A video, a frame list, or a candidate with several images scores the mean of its per-frame rewards; videos are
sampled uniformly to ``nframes`` frames (default 8) through `mmreward.data.media.load_video`, and the sampling
is recorded in the checkpoint config. Texts longer than the model's context (77 tokens for OpenAI CLIP) are
truncated by the open_clip tokenizer. open_clip is imported inside functions only (extra ``clip``).

Offline use: `mmreward.models.clip_weights.resolve_open_clip` turns a spec — a tag, a local weights file, a local
open_clip folder or a copied hub-cache folder — into open_clip's arguments, and says clearly when weights are not
available offline (`load_scorer(spec, kind="clip")` calls it).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmreward.data.collate import build_unit, media_source
from mmreward.data.media import load_image, load_video
from mmreward.data.media.sampling import VideoSampling
from mmreward.data.schema import Candidate, PreferencePair
from mmreward.errors import CheckpointError, DataError
from mmreward.models.checkpoint import (
    CONFIG_NAME,
    begin_save,
    check_safetensors,
    check_settings,
    read_config,
    write_config,
)
from mmreward.models.clip_weights import import_open_clip, load_failure
from mmreward.scoring_engine import score_records
from mmreward.scoring_media import ScoreMediaMixin
from mmreward.scoring_types import Plan

logger = logging.getLogger(__name__)

MODES = ("clipscore", "vlmrm")
# The keys of a CLIP checkpoint's mmreward_config.json and their types (checked on load: edits fail clearly).
CONFIG_KEYS = {"scorer": str, "format_version": int, "model_name": str | None, "pretrained": str | None, "mode": str,
               "alpha": float, "goal_prompts": list[str] | None, "baseline_prompts": list[str] | None,
               "nframes": int | None, "scale": float | None, "video": dict, "precision": str,
               "model_cfg": dict | None, "preprocess_cfg": dict | None, "weights": str | None}
WEIGHTS_NAME = "clip.safetensors"
FORMAT_VERSION = 1
# `dtype` names accepted from the CLI / load_scorer, mapped to open_clip precisions.
_PRECISIONS = {"fp32": "fp32", "float32": "fp32", torch.float32: "fp32", "fp16": "fp16", "float16": "fp16",
               torch.float16: "fp16", "bf16": "bf16", "bfloat16": "bf16", torch.bfloat16: "bf16"}


def projected_reward(x: torch.Tensor, g: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    """VLM-RM goal–baseline projected reward (Rocamonde et al. 2023, "Vision-Language Models are Zero-Shot
    Reward Models for Reinforcement Learning").

    With d = g − b and P = α·d dᵀ/‖d‖² + (1 − α)·I:

        R(x) = 1 − ½·‖(x − g) P‖²

    α = 1 keeps only the component of x − g along the baseline→goal direction d; α = 0 gives
    1 − ½‖x − g‖², which equals x·g (the cosine) when x and g are unit vectors. P is symmetric, so it is
    applied without building the D×D matrix: (x − g) P = α·((x − g)·d / ‖d‖²)·d + (1 − α)·(x − g).

    Args:
        x: (N, D) L2-normalised image embeddings.
        g: (D,) goal embedding: the mean of the L2-normalised goal-prompt embeddings (not re-normalised).
        b: (D,) baseline embedding, built the same way from the baseline prompts.
        alpha: regularisation strength in [0, 1].

    Returns:
        (N,) rewards.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    v = x - g
    d = g - b
    norm2 = d.dot(d)
    if alpha > 0 and norm2 <= 0:
        raise ValueError("goal and baseline embeddings coincide; the projection direction g − b is undefined")
    along = (v @ d)[:, None] * d / norm2 if alpha > 0 else torch.zeros_like(v)
    projected = alpha * along + (1.0 - alpha) * v
    return 1.0 - 0.5 * projected.pow(2).sum(dim=-1)


def _precision(dtype, precision: str) -> str:
    """open_clip precision from a `dtype` override; "auto"/None keep `precision` (fp32 unless asked): CLIP is
    small, and fp32 cosines rank close pairs the same on every device."""
    if dtype is None or dtype == "auto":
        return precision
    if dtype not in _PRECISIONS:
        raise ValueError(f"dtype {dtype!r} unknown; choose auto, fp32, fp16 or bf16")
    return _PRECISIONS[dtype]


def _device(device) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


class _QuietRandomInit(logging.Filter):
    """Drops open_clip's "initialised randomly" warnings while a checkpoint's own weights are about to be loaded."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "no CLIP weights found" not in message and "initialized randomly" not in message


def _build_open_clip(model_name: str, pretrained: str | None, model_cfg: dict | None, preprocess_cfg: dict | None,
                     precision: str, device: torch.device):
    """(model, inference preprocess, tokenizer) from a named open_clip model or an explicit config dict.

    An explicit config goes through open_clip's ``local-dir:`` schema in a temporary folder, so no global
    registry is touched and nothing is downloaded; `pretrained` is then a local weights file or None.
    """
    open_clip = import_open_clip()
    if model_cfg is None:
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained, precision=precision, device=device)
        except (RuntimeError, OSError) as err:  # open_clip's "Failed to download weights …", unreadable files
            spec = f"{model_name}:{pretrained}" if pretrained else model_name
            raise load_failure(spec, err) from err
        return model, preprocess, open_clip.get_tokenizer(model_name)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "open_clip_config.json").write_text(
            json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg or {}}))
        model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{tmp}", precision=precision,
                                                                     device=device)
        tokenizer = open_clip.get_tokenizer(f"local-dir:{tmp}")
    if pretrained is not None:
        if not os.path.isfile(pretrained):
            raise CheckpointError(f"{pretrained}: no such file; with model_cfg, pretrained must be a local weights file")
        open_clip.load_checkpoint(model, pretrained)
    return model, preprocess, tokenizer


class ClipUnitEncoder:
    """Picklable unit -> {"pixels": (F, 3, S, S), "text": str, "response": bool} (runs in DataLoader workers).

    Images are loaded at full size and videos are sampled under `sampling`; open_clip's `preprocess`
    (resize, centre crop, normalise) then turns each image or frame into the model's input.
    """

    def __init__(self, preprocess, sampling: VideoSampling):
        self.preprocess = preprocess
        self.sampling = sampling

    def __call__(self, unit) -> dict:
        if not unit.media:
            # Raised here, not in `plan`, so `on_error="skip"` reports this record and scores the others.
            raise DataError("CLIP needs an image or video to score; this candidate has only text and the record "
                             "has no shared media")
        pixels = torch.stack([self.preprocess(image) for image in self._images(unit)])
        if unit.has_response:
            text = unit.messages[-1]["content"]
        else:
            user = [m for m in unit.messages if m["role"] == "user"][-1]
            text = [part["text"] for part in user["content"] if part["type"] == "text"][-1]
        return {"pixels": pixels, "text": text, "response": unit.has_response}

    def _images(self, unit) -> list:
        """PIL images of every image and sampled video frame of the unit, in order."""
        from PIL import Image

        images = []
        for item in unit.media:
            source = media_source(item)
            if item.type == "image":
                images.append(load_image(source))
                continue
            kwargs = {"frames_fps": item.fps} if item.type == "frames" and item.fps else {}
            video = load_video(source, sampling=self.sampling, start=item.start, end=item.end, **kwargs)
            # Cached frames are shared: convert to fresh arrays, never modify in place.
            images.extend(Image.fromarray(np.ascontiguousarray(f.permute(1, 2, 0).numpy())) for f in video.frames)
        return images


class ClipScorer(nn.Module, ScoreMediaMixin):
    """CLIPScore / VLM-RM scoring with an open_clip model; implements the `mmreward.scoring` Scorer protocol."""

    kind = "clip"

    def __init__(self, model: nn.Module, preprocess, tokenizer, *, mode: str = "clipscore", alpha: float = 0.5,
                 goal_prompts: list[str] | None = None, baseline_prompts: list[str] | None = None,
                 nframes: int = 8, scale: float | None = None, sampling: VideoSampling | None = None,
                 model_name: str | None = None, pretrained: str | None = None, model_cfg: dict | None = None,
                 precision: str = "fp32"):
        """Wrap a loaded open_clip model (use `from_open_clip` to load one by name).

        Args:
            model: an open_clip model with `encode_image` / `encode_text`.
            preprocess: its inference image transform (PIL -> (3, S, S) tensor).
            tokenizer: its tokenizer (list of str -> (n, context) token ids).
            mode: "clipscore" (cosine with the prompt) or "vlmrm" (goal–baseline projected reward).
            alpha: VLM-RM projection strength in [0, 1] (vlmrm only).
            goal_prompts: VLM-RM goal prompts; None: the record prompt is the goal.
            baseline_prompts: VLM-RM baseline prompts (required for vlmrm).
            nframes: frames sampled uniformly from each video (even, >= 2).
            scale: CLIPScore weight w: reward = w·max(cos, 0); None (default): the raw cosine.
            sampling: full video sampling contract (overrides `nframes`; as restored from a checkpoint).
            model_name, pretrained, model_cfg, precision: where the model came from (recorded by
                `save_pretrained`); `model_cfg` is the open_clip architecture dict of a custom model.
        """
        super().__init__()
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.mode = mode
        self.alpha = float(alpha)
        self.goal_prompts = [goal_prompts] if isinstance(goal_prompts, str) else goal_prompts
        self.baseline_prompts = [baseline_prompts] if isinstance(baseline_prompts, str) else baseline_prompts
        self.scale = scale
        # Uniform sampling of exactly `nframes` frames; pixel budgets stay generous (preprocess resizes anyway).
        self.sampling = sampling or VideoSampling(nframes=nframes)
        self.nframes = self.sampling.nframes
        self.model_name, self.pretrained, self.model_cfg, self.precision = model_name, pretrained, model_cfg, precision
        self.dimensions = ["overall"]
        self._validate()

    def _validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.mode == "vlmrm" and not self.baseline_prompts:
            raise ValueError("mode 'vlmrm' needs baseline_prompts (e.g. ['a video', 'a photo']): the reward projects "
                             "onto the baseline→goal direction")
        if self.mode == "clipscore" and (self.goal_prompts or self.baseline_prompts):
            raise ValueError("goal_prompts / baseline_prompts apply to mode 'vlmrm' only; clipscore scores the "
                             "record prompt")
        if self.scale is not None and (self.mode != "clipscore" or not self.scale > 0):
            raise ValueError(f"scale must be a positive CLIPScore weight (e.g. 2.5) in mode 'clipscore', "
                             f"got {self.scale} in mode {self.mode!r}")
        if self.sampling.nframes is None:
            raise ValueError("the CLIP scorer samples a fixed number of frames per video; give nframes")

    @classmethod
    def from_open_clip(cls, model_name: str = "ViT-B-32", pretrained: str | None = "openai", *,
                       model_cfg: dict | None = None, device=None, dtype=None, precision: str = "fp32",
                       **kwargs) -> ClipScorer:
        """Load any open_clip model and pretrained tag (or a local weights file).

        Args:
            model_name: an open_clip architecture ("ViT-B-32"), "hf-hub:org/repo" or "local-dir:/path"; with
                `model_cfg`, only a label recorded in the config.
            pretrained: a pretrained tag ("openai", "laion2b_s34b_b79k"), a local weights file, or None for
                random weights (tests).
            model_cfg: an open_clip architecture dict (`embed_dim`, `vision_cfg`, `text_cfg`) for a custom model.
            device: default CUDA when available, else CPU.
            dtype: "auto" (keep `precision`), "fp32", "fp16" or "bf16" (the CLI's --dtype).
            precision: open_clip precision ("fp32", "fp16", "bf16", ...).
            **kwargs: `ClipScorer` options (mode, alpha, goal_prompts, baseline_prompts, nframes, scale).
        """
        precision = _precision(dtype, precision)
        if pretrained is None and model_cfg is None and not model_name.startswith(("hf-hub:", "local-dir:")):
            logger.warning("%s: no pretrained weights given; the model is randomly initialised", model_name)
        model, preprocess, tokenizer = _build_open_clip(model_name, pretrained, model_cfg, None, precision,
                                                        _device(device))
        return cls(model, preprocess, tokenizer, model_name=model_name, pretrained=pretrained,
                   model_cfg=model_cfg, precision=precision, **kwargs)

    @classmethod
    def from_source(cls, spec: str, *, mode: str | None = None, **kwargs) -> ClipScorer:
        """`load_scorer(spec, kind="clip")`: an open_clip spec (see `models.clip_weights.resolve_open_clip`).

        Args:
            spec: "MODEL[:PRETRAINED]", a local open_clip folder, "hf-hub:…" or "local-dir:…".
            mode: "clipscore" or "vlmrm" (default: the scorer's).
            **kwargs: as in `from_open_clip` (device, dtype, scorer options).
        """
        from mmreward.models.clip_weights import resolve_open_clip

        name, pretrained = resolve_open_clip(str(spec))
        return cls.from_open_clip(name, pretrained, **({"mode": mode} if mode else {}), **kwargs)

    # --- Scorer protocol -------------------------------------------------------------------------------------
    def plan(self, record) -> Plan:
        """One unit per candidate (pairs) or one unit (pointwise); see the module docstring for what is scored."""
        # Everything that changes a unit's reward is in the key, so a unit is scored once per call.
        key = "clip:" + json.dumps([self.mode, self.alpha, self.goal_prompts, self.baseline_prompts, self.scale,
                                    self.sampling.to_dict()])
        if isinstance(record, PreferencePair):
            return Plan([self._unit(record, c, key) for c in (record.a, record.b)], "pair")
        return Plan([self._unit(record, Candidate(text=record.response), key)], "pointwise")

    @staticmethod
    def _unit(record, candidate: Candidate, key: str):
        if candidate.media:
            return build_unit(record.id, user_text=record.prompt, media=candidate.media, extra_key=key)
        if candidate.text is not None:
            return build_unit(record.id, user_text=record.prompt, media=record.media, response=candidate.text,
                              extra_key=key)
        return build_unit(record.id, user_text=record.prompt, media=record.media, extra_key=key)

    def encoder(self) -> ClipUnitEncoder:
        return ClipUnitEncoder(self.preprocess, self.sampling)

    def forward_batch(self, encodings: list[dict]) -> torch.Tensor:
        """Rewards of encoded units: all frames in one image pass, each distinct text encoded once.

        Args:
            encodings: `ClipUnitEncoder` outputs; unit i has F_i frames of (3, S, S).

        Returns:
            (n, 1) float32 rewards (per-frame rewards averaged over each unit's frames).
        """
        device = next(self.model.parameters()).device
        counts = [e["pixels"].shape[0] for e in encodings]
        pixels = torch.cat([e["pixels"] for e in encodings]).to(device, self._pixel_dtype())
        frames = F.normalize(self.model.encode_image(pixels).float(), dim=-1)
        texts = [e["text"] for e in encodings if e["response"] or self.mode == "clipscore" or not self.goal_prompts]
        embedded = self._embed_texts([*texts, *(self.goal_prompts or []), *(self.baseline_prompts or [])])
        rewards = [self._unit_reward(x, e, embedded) for x, e in zip(frames.split(counts), encodings)]
        return torch.stack(rewards)[:, None]

    def _pixel_dtype(self) -> torch.dtype:
        # open_clip's fp16/bf16 precisions cast the patch embedding; the input must match its weight.
        conv = getattr(self.model.visual, "conv1", None)
        return conv.weight.dtype if conv is not None else next(self.model.visual.parameters()).dtype

    def _embed_texts(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Text -> (D,) L2-normalised embedding, each distinct text encoded once."""
        unique = list(dict.fromkeys(texts))
        tokens = self.tokenizer(unique).to(next(self.model.parameters()).device)
        return dict(zip(unique, F.normalize(self.model.encode_text(tokens).float(), dim=-1)))

    def _unit_reward(self, x: torch.Tensor, encoded: dict, embedded: dict[str, torch.Tensor]) -> torch.Tensor:
        """() mean reward over a unit's (F, D) normalised frame embeddings."""
        if encoded["response"] or self.mode == "clipscore":
            cos = x @ embedded[encoded["text"]]
            return (self.scale * cos.clamp(min=0) if self.scale is not None else cos).mean()
        # Means of unit vectors, deliberately not re-normalised (VLM-RM).
        g = torch.stack([embedded[p] for p in self.goal_prompts or [encoded["text"]]]).mean(dim=0)
        b = torch.stack([embedded[p] for p in self.baseline_prompts]).mean(dim=0)
        return projected_reward(x, g, b, self.alpha).mean()

    def score(self, records, **kwargs):
        """Score pairs / pointwise records (see `mmreward.scoring.score_records`)."""
        self.eval()
        return score_records(self, records, **kwargs)

    # --- persistence -------------------------------------------------------------------------------------------
    def _weights_by_name(self) -> bool:
        """Whether open_clip can fetch the same weights again from the recorded name and tag."""
        name = self.model_name or ""
        if name.startswith("hf-hub:"):
            return True
        return (self.model_cfg is None and bool(name) and not name.startswith("local-dir:")
                and self.pretrained is not None and not os.path.isfile(self.pretrained))

    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write `mmreward_config.json`, plus `clip.safetensors` and the architecture unless the weights are a
        named pretrained tag (random, local-file and custom models round-trip bit-identically)."""
        from safetensors.torch import save_model

        out = begin_save(Path(out_dir))
        config = {"scorer": self.kind, "format_version": FORMAT_VERSION, "model_name": self.model_name,
                  "pretrained": self.pretrained, "mode": self.mode, "alpha": self.alpha,
                  "goal_prompts": self.goal_prompts, "baseline_prompts": self.baseline_prompts,
                  "nframes": self.nframes, "scale": self.scale, "video": self.sampling.to_dict(),
                  "precision": self.precision, "model_cfg": self.model_cfg, "preprocess_cfg": None, "weights": None}
        if not self._weights_by_name():
            config["model_cfg"] = self._architecture()
            config["preprocess_cfg"] = dict(getattr(self.model.visual, "preprocess_cfg", None) or {})
            config["weights"] = WEIGHTS_NAME
            save_model(self.model, str(out / WEIGHTS_NAME))
        write_config(out, config)
        return out

    def _architecture(self) -> dict:
        if self.model_cfg is not None:
            return self.model_cfg
        cfg = import_open_clip().get_model_config(self.model_name) if self.model_name else None
        if cfg is None:
            raise ValueError("cannot record this model's architecture; construct the scorer with model_cfg=")
        return cfg

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device=None, dtype=None) -> ClipScorer:
        """Load a checkpoint written by `save_pretrained`; outputs are bit-identical to the saved scorer's.

        Args:
            path: checkpoint directory.
            device: default CUDA when available, else CPU.
            dtype: "auto"/None keep the saved precision; "fp32", "fp16" or "bf16" override it.
        """
        from safetensors.torch import load_model

        path = Path(path)
        raw = read_config(path)
        file = path / CONFIG_NAME
        if raw.get("scorer") != cls.kind:
            raise CheckpointError(f"{path}: holds a {raw.get('scorer')!r} scorer; use mmreward.scoring.load_scorer")
        check_settings(raw, CONFIG_KEYS, list(CONFIG_KEYS), file)
        precision = _precision(dtype, raw["precision"])
        device = _device(device)
        if raw["weights"]:
            if Path(raw["weights"]).name != raw["weights"]:
                raise CheckpointError(f"{file}: 'weights' must be a file name inside {path}, got {raw['weights']!r}")
            check_safetensors(path / raw["weights"])
            # open_clip logs these on the root logger; they would be false here, the weights load next.
            quiet = _QuietRandomInit()
            logging.getLogger().addFilter(quiet)
            try:
                model, preprocess, tokenizer = _build_open_clip(raw["model_name"], None, raw["model_cfg"],
                                                                raw["preprocess_cfg"], precision, device)
            except (KeyError, TypeError, ValueError) as err:
                raise CheckpointError(f"{file}: 'model_cfg' is not an open_clip architecture ({err!r})") from err
            finally:
                logging.getLogger().removeFilter(quiet)
            try:
                load_model(model, str(path / raw["weights"]), device=str(device))
            except RuntimeError as err:
                raise CheckpointError(f"{path / raw['weights']}: does not fit the architecture recorded in {file} "
                                      f"({str(err).strip().splitlines()[0][:200]})") from err
        else:
            model, preprocess, tokenizer = _build_open_clip(raw["model_name"], raw["pretrained"], None, None,
                                                            precision, device)
        try:
            sampling = VideoSampling.from_dict(raw["video"])
            return cls(model, preprocess, tokenizer, mode=raw["mode"], alpha=raw["alpha"],
                       goal_prompts=raw["goal_prompts"], baseline_prompts=raw["baseline_prompts"], scale=raw["scale"],
                       sampling=sampling, model_name=raw["model_name"], pretrained=raw["pretrained"],
                       model_cfg=raw["model_cfg"], precision=precision)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{file}: {err}") from None
