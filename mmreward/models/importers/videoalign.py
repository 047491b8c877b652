"""VideoAlign / VideoReward (KwaiVGI/VideoAlign): Qwen2-VL + a bias-free linear reward head on special tokens.

Published layout (what `train_reward.py` writes and the released `KwaiVGI/VideoReward` folder holds):

    model_config.json        {"data_config", "training_args", "model_config", "peft_lora_config", "inference_config"}
    checkpoint-N/            adapter_model.safetensors + adapter_config.json + non_lora_state_dict.pth   (LoRA)
                             or model.pth                                                               (full)

The base model (`model_config.model_name_or_path`, Qwen2-VL-2B-Instruct for the release) is not in the folder:
it is loaded from the hub cache or from `base=`. Keys are transformers-4.45 names under peft's
`base_model.model.` prefix (`model.layers.*`, `visual.*`, `rm_head.weight`); the LoRA update is merged into the
weights (W + alpha/r · B·A), so the result is a plain `RewardModel` that scores, evaluates and saves like ours.

What the published forward does, reproduced here (read from `trainer.py` / `inference.py`):
- the user turn is [video, build_prompt(prompt)] with "detailed_special" putting `<|VQ_reward|>`,
  `<|MQ_reward|>`, `<|TA_reward|>` inside the text; the three tokens are added to the base tokenizer and the
  embedding matrix is resized to len(tokenizer) (for Qwen2-VL-2B that *shrinks* it to the used rows);
- reward k = rm_head(hidden at token k)[k] (the diagonal), no bias;
- positions are 0..T-1 on all three M-RoPE axes: their `Qwen2VLRewardModelBT.forward` calls the text model
  without `get_rope_index`, so transformers 4.45 fell back to cache positions (`position_ids="mrope"` gives
  Qwen2-VL's 3-D positions instead; the weights were trained with the sequential ones);
- rewards are normalised with `inference_config` ((r - mean) / std per dimension) and Overall = VQ + MQ + TA.
Frames: qwen-vl-utils' rule at the recorded fps (or frame count), per-frame budget `max_frame_pixels`, index
timing; our decoder's resize may differ from torchvision's bicubic by rounding.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from mmreward.errors import CheckpointError, ConfigError
from mmreward.models.reward_model import RewardModel, RewardModelConfig

logger = logging.getLogger(__name__)

REWARD_TOKENS = ("<|VQ_reward|>", "<|MQ_reward|>", "<|TA_reward|>")
# VideoAlign's prompt_template_type -> our HEAD_TEMPLATES name ("none" is the prompt alone).
TEMPLATES = {"detailed_special": "videoalign_detailed_special", "detailed": "videoalign_detailed", "none": "plain"}
_PEFT_PREFIX = "base_model.model."
_LORA = re.compile(r"^(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")
_BASE_LAYER = re.compile(r"^(?P<module>.+)\.base_layer\.(?P<param>weight|bias)$")
_TO_SAVE = re.compile(r"^(?P<module>.+)\.modules_to_save\.[^.]+\.(?P<rest>.+)$")


def detect(path: Path) -> bool:
    """Whether `path` is a VideoAlign training output (file names only)."""
    if not (path / "model_config.json").is_file():
        return False
    return any(_is_step(sub) for sub in path.glob("checkpoint-*"))


def _is_step(sub: Path) -> bool:
    return sub.is_dir() and sub.name.split("-", 1)[1].isdigit() and (
        (sub / "model.pth").is_file() or (sub / "adapter_model.safetensors").is_file())


@dataclass
class VideoAlignConfig(RewardModelConfig):
    """A reward model config plus what VideoAlign's forward does differently."""

    # "sequential": positions 0..T-1 on every M-RoPE axis (the published forward); "mrope": Qwen2-VL's 3-D ones.
    position_ids: str = "sequential"
    # The published folder and checkpoint step this was imported from.
    source: str = ""

    def __post_init__(self):
        super().__post_init__()
        if self.position_ids not in ("sequential", "mrope"):
            raise ValueError(f"position_ids must be 'sequential' or 'mrope', got {self.position_ids!r}")


class VideoAlignRewardModel(RewardModel):
    """A `RewardModel` with VideoAlign's positions and its reward tokens inside the prompt text."""

    kind = "videoalign"
    # Not a kind `mmreward train bt` builds from scratch (the registry lists classes with a callable one).
    from_bt_config = None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                response_mask: torch.Tensor | None = None, **vision_inputs) -> torch.Tensor:
        """Rewards (B, n_dims); with sequential positions each row counts its own real tokens from 0."""
        if self.config.position_ids == "sequential":
            # Right padding (pad_batch) makes this arange(T) for every real token, as in the published forward;
            # counting real tokens also keeps a left-padded row's rewards unchanged.
            vision_inputs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        return super().forward(input_ids, attention_mask, response_mask, **vision_inputs)

    def plan(self, record):
        """One unit per candidate (pairs) or one (pointwise): [media…, the template's text]; the reward tokens are
        already inside VideoAlign's text, so no suffix is appended (`RewardModel.plan` appends them)."""
        from mmreward.data.collate import candidate_unit
        from mmreward.data.schema import Candidate, PreferencePair
        from mmreward.scoring_types import Plan

        key = f"videoalign:{self.config.prompt_template}"
        text = self.config.prompt_text
        if isinstance(record, PreferencePair):
            return Plan([candidate_unit(record, c, text, extra_key=key) for c in (record.a, record.b)], "pair")
        # A pointwise record's media are the generated video being judged (VideoAlign has no text candidates).
        cand = Candidate(text=record.response, media=list(record.media) if record.response is None else [])
        shown = record if record.response is not None else _without_media(record)
        return Plan([candidate_unit(shown, cand, text, extra_key=key)], "pointwise")

    @classmethod
    def from_source(cls, path_or_id: str | Path, *, mode: str | None = None, **kwargs) -> VideoAlignRewardModel:
        """`load_scorer(path, kind="videoalign")`: import a published VideoAlign folder (see `import_videoalign`)."""
        if mode is not None:
            raise ConfigError(f"{path_or_id}: a VideoAlign model has no scoring mode; drop --mode")
        return import_videoalign(path_or_id, **kwargs)

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> VideoAlignRewardModel:
        """A published VideoAlign folder (imported), or one this class saved (`save_pretrained`)."""
        from mmreward.models.checkpoint import CONFIG_NAME

        if not (Path(path) / CONFIG_NAME).is_file() and detect(Path(path)):
            return import_videoalign(path, **kwargs)
        return _load_saved(cls, Path(path), **kwargs)


def _without_media(record):
    import dataclasses

    return dataclasses.replace(record, media=[])


def _load_saved(cls, path: Path, *, dtype="auto", attn_implementation: str = "auto", device=None,
                trainable: bool = False, media=None) -> VideoAlignRewardModel:
    """Load what `save_pretrained` wrote (merged weights under backbone/, head.safetensors, the config)."""
    from mmreward.data.collate import override_contract
    from mmreward.models.checkpoint import (
        CONFIG_NAME,
        check_media,
        check_safetensors,
        config_from_dict,
        load_backbone,
        load_state,
        read_config,
    )

    raw = read_config(path)
    if raw.pop("scorer", cls.kind) != cls.kind:
        raise CheckpointError(f"{path}: holds a different scorer kind; use mmreward.scoring.load_scorer")
    config = config_from_dict(VideoAlignConfig, raw, path / CONFIG_NAME)
    check_media(config.media, path / CONFIG_NAME)
    check_safetensors(path / "head.safetensors")
    backbone, processor = load_backbone(path, config.backbone, lora=config.lora is not None, dtype=dtype,
                                        attn_implementation=attn_implementation, device=device, trainable=trainable)
    model = cls(backbone, processor, config, head=_linear_head(backbone, len(config.dimensions)))
    load_state(model.head, path / "head.safetensors")
    model.contract = override_contract(model.contract, media, str(path))
    return model.to(next(backbone.parameters()).device)


def _linear_head(backbone, n_dims: int):
    from mmreward.models.backbone import inner_model
    from mmreward.models.heads import LinearHead

    return LinearHead(inner_model(backbone).config.text_config.hidden_size, n_dims)


def read_published_config(path: Path) -> dict:
    """`model_config.json` of a VideoAlign folder, checked for the sections the importer reads.

    Raises:
        CheckpointError: missing, not JSON, or without data_config / model_config.
    """
    file = path / "model_config.json"
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{file}: missing; a VideoAlign folder holds model_config.json beside its "
                              "checkpoint-N folders") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{file}: not valid JSON ({err}); download it again") from None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), dict) for k in ("data_config", "model_config")):
        raise CheckpointError(f"{file}: needs 'data_config' and 'model_config' objects (VideoAlign's "
                              "save_configs_to_json layout)")
    return raw


def pick_checkpoint(path: Path, step: int | None = None) -> Path:
    """The checkpoint-N folder to load: `step`, else the highest N (as VideoAlign's `load_model_from_checkpoint`).

    Raises:
        CheckpointError: no checkpoint-N folder with weights, or `step` is not among them.
    """
    steps = {int(sub.name.split("-", 1)[1]): sub for sub in path.glob("checkpoint-*") if _is_step(sub)}
    if not steps:
        raise CheckpointError(f"{path}: no checkpoint-N folder with model.pth or adapter_model.safetensors")
    if step is None:
        return steps[max(steps)]
    if step not in steps:
        raise CheckpointError(f"{path}: no checkpoint-{step}; available steps: {sorted(steps)}")
    return steps[step]


def _torch_load(file: Path) -> dict:
    """A pickled state dict, tensors only (`weights_only`: a published .pth is never allowed to run code)."""
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{file}: missing; the checkpoint was copied only in part") from None
    except Exception as err:  # noqa: BLE001 - unpickling raises many types; each means a bad file
        raise CheckpointError(f"{file}: not a readable tensor state dict ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:200] if str(err) else ''})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{file}: holds a {type(state).__name__}, not a state dict")
    return state


def read_weights(ckpt: Path) -> tuple[dict, float | None]:
    """The checkpoint's tensors (peft prefix removed) and the LoRA scale from adapter_config.json (None: full)."""
    from mmreward.models.checkpoint import load_safetensors

    if (ckpt / "model.pth").is_file():
        state = _torch_load(ckpt / "model.pth")
    else:
        state = {**_torch_load(ckpt / "non_lora_state_dict.pth"),
                 **load_safetensors(ckpt / "adapter_model.safetensors")}
    state = {k[len(_PEFT_PREFIX):] if k.startswith(_PEFT_PREFIX) else k: v for k, v in state.items()}
    scale = None
    if any(_LORA.match(k) for k in state):
        scale = _lora_scale(ckpt)
    return state, scale


def _lora_scale(ckpt: Path) -> float:
    """alpha / r (alpha / sqrt(r) with rsLoRA) from adapter_config.json, else from the folder's model_config.json."""
    file = ckpt / "adapter_config.json"
    if file.is_file():
        cfg = json.loads(file.read_text(encoding="utf-8"))
        r, alpha, rs = cfg.get("r"), cfg.get("lora_alpha"), cfg.get("use_rslora", False)
    else:
        peft = read_published_config(ckpt.parent).get("peft_lora_config") or {}
        r, alpha, rs = peft.get("lora_r"), peft.get("lora_alpha"), peft.get("use_rslora", False)
    if not r or alpha is None:
        raise CheckpointError(f"{ckpt}: LoRA weights without r / lora_alpha (adapter_config.json or "
                              "model_config.json peft_lora_config)")
    return alpha / (r ** 0.5 if rs else r)


def rename(key: str) -> str:
    """A transformers-4.45 Qwen2-VL key -> its transformers-5 name (`model.` is the LM, `visual.` the ViT)."""
    if key.startswith("model."):
        return "model.language_model." + key[len("model."):]
    if key.startswith("visual."):
        return "model.visual." + key[len("visual."):]
    return key


def merge_state(state: dict, scale: float | None, live: dict) -> tuple[dict, torch.Tensor]:
    """The backbone tensors to overwrite (new names) and the head weight, LoRA merged into its base weights.

    Args:
        state: the checkpoint's tensors, peft prefix removed.
        scale: the LoRA scale (None when the checkpoint holds no LoRA weights).
        live: the freshly loaded backbone's state dict (base weights and target shapes).

    Returns:
        (updates, rm_head weight): `updates` maps backbone keys to float tensors.

    Raises:
        CheckpointError: an unknown key, a shape that does not fit, half a LoRA pair, or no `rm_head.weight`.
    """
    plain, lora = {}, {}
    for key, value in state.items():
        if m := _LORA.match(key):
            lora.setdefault(m["module"], {})[m["ab"]] = value
        elif m := _BASE_LAYER.match(key):
            plain[f"{m['module']}.{m['param']}"] = value
        elif m := _TO_SAVE.match(key):
            plain[f"{m['module']}.{m['rest']}"] = value
        elif ".original_module." not in key:
            plain[key] = value
    head = plain.pop("rm_head.weight", None)
    if head is None:
        raise CheckpointError("no rm_head.weight in the checkpoint: not a VideoAlign reward model")
    updates = {}
    for key, value in plain.items():
        target = rename(key)
        if target not in live or live[target].shape != value.shape:
            got = "no such parameter" if target not in live else f"shape {tuple(value.shape)} vs {tuple(live[target].shape)}"
            raise CheckpointError(f"checkpoint key {key!r} does not fit the base model ({got}); is the base model "
                                  "the one model_config.json names?")
        updates[target] = value.float()
    for module, pair in lora.items():
        target = rename(module) + ".weight"
        if set(pair) != {"A", "B"} or target not in live:
            raise CheckpointError(f"LoRA weights of {module!r} do not fit the base model (have {sorted(pair)})")
        base = updates.get(target, live[target].float())
        updates[target] = base + scale * (pair["B"].float() @ pair["A"].float())
    return updates, head.float()


def _dimensions(special: bool, pooling: str, eval_dim, n_out: int, where: Path) -> list[str]:
    """Names of the head's outputs: VQ/MQ/TA on the special tokens, else the trained `eval_dim`s."""
    if pooling not in ("special", "last"):
        # Their "mean" averages the logits of all but the last real token; not reproduced (an option to add).
        raise CheckpointError(f"{where}: reward_token {pooling!r} is not supported by the importer (special, last)")
    if special:
        if n_out != len(REWARD_TOKENS):
            raise CheckpointError(f"{where}: special-token pooling with output_dim {n_out}; the published "
                                  "forward (view(B, 3, -1)) reads 3 tokens x output_dim, only output_dim 3 is supported")
        return [t[2:4] for t in REWARD_TOKENS]
    dims = [eval_dim] if isinstance(eval_dim, str) else list(eval_dim or [])
    return dims if len(dims) == n_out else [f"reward_{i}" for i in range(n_out)]


def _contract(processor, data: dict, where: Path):
    """VideoAlign's frame sampling (qwen-vl-utils rule, index timing) and per-frame budget as our contract."""
    from dataclasses import replace

    from mmreward.data.collate import MediaContract
    from mmreward.data.media import VideoSampling

    if data.get("sample_type", "uniform") != "uniform":
        logger.warning("%s: sample_type %r is not reproduced; frames are sampled uniformly", where,
                       data.get("sample_type"))
    max_pixels = int(data.get("max_frame_pixels") or 240 * 320)
    nframes = data.get("num_frames")
    # An explicit max_pixels replaces qwen-vl-utils' total-pixel budget in their fetch_video: no total cap.
    sampling = VideoSampling.qwen_defaults(
        28, fps=None if nframes else float(data.get("fps") or 2.0), nframes=int(nframes) if nframes else None,
        min_pixels=min(128 * 28 * 28, max_pixels), max_pixels=max_pixels, total_pixels=max_pixels * 768,
        timing="index")
    return replace(MediaContract.from_processor(processor, 28), video=sampling)


def import_videoalign(path: str | Path, *, base: str | Path | None = None, step: int | None = None,
                      normalize: bool = True, position_ids: str = "sequential", dtype="auto",
                      attn_implementation: str = "auto", device=None, media=None) -> VideoAlignRewardModel:
    """Load a published VideoAlign folder as a `VideoAlignRewardModel` that reproduces its VQ/MQ/TA rewards.

    Args:
        path: the folder holding model_config.json and checkpoint-N/ (e.g. a clone of KwaiVGI/VideoReward).
        base: the Qwen2-VL base model (hub id or folder); default: model_config.json's model_name_or_path.
        step: which checkpoint-N to load (default: the highest, as VideoAlign's inference does).
        normalize: apply inference_config's per-dimension (mean, std), as `reward(use_norm=True)` does.
        position_ids: "sequential" (the published forward) or "mrope" (Qwen2-VL's 3-D positions).
        dtype, attn_implementation, device: as in `load_vlm` (weights are merged in float32 first).
        media: score with another media contract than the recorded one (warns).

    Returns:
        The scorer; `save_pretrained` writes it as a mmreward checkpoint of kind "videoalign".

    Raises:
        CheckpointError: a missing or malformed part, a base model that is not available or does not fit.
    """
    from mmreward.data.collate import override_contract
    from mmreward.models.backbone import family_of, load_vlm, resolve_dtype
    from mmreward.models.checkpoint import check_folder

    folder = check_folder(Path(path).expanduser())
    published = read_published_config(folder)
    data, mcfg = published["data_config"], published["model_config"]
    ckpt = pick_checkpoint(folder, step)
    base = str(base or mcfg.get("model_name_or_path") or "")
    if not base:
        raise CheckpointError(f"{folder / 'model_config.json'}: no model_name_or_path; pass base= (the Qwen2-VL model)")
    template = TEMPLATES.get(data.get("prompt_template_type", "none"))
    if template is None:
        raise CheckpointError(f"{folder}: prompt_template_type {data.get('prompt_template_type')!r} is not supported; "
                              f"supported: {', '.join(TEMPLATES)}")
    try:
        backbone, processor = load_vlm(base, dtype=torch.float32, attn_implementation=attn_implementation,
                                       device="cpu")
    except CheckpointError as err:
        raise CheckpointError(f"{folder}: VideoAlign's base model cannot be loaded (pass base=): {err}") from err
    if family_of(backbone.config).model_type != "qwen2_vl":
        raise CheckpointError(f"{folder}: base {base} is {backbone.config.model_type}; VideoAlign's reward model "
                              "is Qwen2-VL (Qwen2VLRewardModelBT)")
    special = bool(mcfg.get("use_special_tokens"))
    rows = backbone.get_input_embeddings().num_embeddings
    if special:
        # As create_model_and_processor: add the tokens, then resize to len(tokenizer) (may shrink the matrix).
        processor.tokenizer.add_special_tokens({"additional_special_tokens": list(REWARD_TOKENS)})
        backbone.resize_token_embeddings(len(processor.tokenizer))
    state, scale = read_weights(ckpt)
    live = backbone.state_dict()
    updates, head_weight = merge_state(state, scale, live)
    embed = "model.language_model.embed_tokens.weight"
    if special and embed not in updates and len(processor.tokenizer) > rows:
        raise CheckpointError(f"{ckpt}: the reward tokens got new embedding rows (the base has {rows}) but the "
                              "checkpoint does not hold them; their scores would depend on a random init")
    with torch.no_grad():
        for key, value in updates.items():
            live[key].copy_(value.to(live[key].dtype))
    dims = _dimensions(special, mcfg.get("reward_token", "last"), data.get("eval_dim"), head_weight.shape[0], ckpt)
    stats = published.get("inference_config") or {}
    norm = {d: [float(stats[f"{d}_mean"]), float(stats[f"{d}_std"])] for d in dims
            if f"{d}_mean" in stats and f"{d}_std" in stats} if normalize else {}
    config = VideoAlignConfig(
        backbone=base, model_type="qwen2_vl", head="linear", pooling="special" if special else "last",
        dimensions=dims, prompt_template=template, reward_tokens=list(REWARD_TOKENS) if special else [],
        media=_contract(processor, data, folder).to_dict(), normalization=norm or None,
        position_ids=position_ids, source=str(ckpt))
    head = _linear_head(backbone, len(dims))
    with torch.no_grad():
        head.fc.weight.copy_(head_weight)
        head.fc.bias.zero_()  # rm_head has no bias
    model = VideoAlignRewardModel(backbone.to(resolve_dtype(dtype)), processor, config, head=head)
    model.contract = override_contract(model.contract, media, str(folder))
    logger.info("imported VideoAlign %s (base %s, %s pooling, dimensions %s)", ckpt, base, config.pooling, dims)
    return model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
