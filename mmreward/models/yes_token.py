"""Generative yes-token scoring (RewardDance): reward = P("yes") normalised over {yes, no} at the answer position.

No new parameters: the VLM's own LM head is read at the first generated position. Pointwise mode asks one
question per candidate ("Does the video match the prompt? Answer yes or no."); pairwise mode shows both
candidates and asks whether the first is better, so the reward is P(A better than B). The logit difference
log P(yes) − log P(no) is differentiable, so the Bradley–Terry trainer can train the scorer.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from mmreward.data.collate import MediaContract, build_unit, candidate_kind, override_contract
from mmreward.errors import CheckpointError
from mmreward.models.backbone import FAMILIES, checkpoint_backbone, family_of, inner_model, load_vlm
from mmreward.models.checkpoint import (
    CONFIG_NAME,
    check_media,
    config_from_dict,
    load_backbone,
    plain_model_source,
    read_config,
    save_backbone,
    split_state_dict,
    write_config,
)
from mmreward.models.heads import pool_last_token
from mmreward.models.reward_model import UnitEncoder, forward_encodings
from mmreward.prompts import YES_NO_TEMPLATES, render
from mmreward.scoring_engine import score_records
from mmreward.scoring_media import ScoreMediaMixin
from mmreward.scoring_types import Plan

logger = logging.getLogger(__name__)


@dataclass
class YesTokenConfig:
    """How a yes-token scorer asks and reads its answer."""

    # Backbone: hub id or local path (the LoRA base when an adapter is saved).
    backbone: str
    model_type: str
    # "pointwise": P(yes) per candidate; "pairwise": one question per pair, P(first is better).
    mode: str = "pointwise"
    # Answer words; each must be one token. Variants (case) are pooled: P(yes) = sum over yes words.
    yes_words: list[str] = field(default_factory=lambda: ["yes", "Yes"])
    no_words: list[str] = field(default_factory=lambda: ["no", "No"])
    # Templates (names in prompts.YES_NO_TEMPLATES) for media candidates and for text responses.
    template: str = ""
    response_template: str = ""
    # What `score` reports: "prob" (P(yes) in [0, 1]) or "logit" (log P(yes) − log P(no)).
    output: str = "prob"
    # The media contract (video sampling and pixel budgets); empty: the processor's own budgets at 2 fps.
    media: dict = field(default_factory=dict)
    max_length: int | None = None
    on_overflow: str = "error"
    lora: dict | None = None

    def __post_init__(self):
        if self.mode not in ("pointwise", "pairwise"):
            raise ValueError(f"mode must be 'pointwise' or 'pairwise', got {self.mode!r}")
        if self.output not in ("prob", "logit"):
            raise ValueError(f"output must be 'prob' or 'logit', got {self.output!r}")
        self.template = self.template or self.mode
        self.response_template = self.response_template or f"{self.mode}_response"
        for name in (self.template, self.response_template):
            if name not in YES_NO_TEMPLATES:
                raise ValueError(f"template {name!r} unknown; choose one of {', '.join(YES_NO_TEMPLATES)}")


def resolve_word_ids(tokenizer, words: list[str]) -> list[int]:
    """Token ids of answer words; each word must be exactly one token of this tokenizer."""
    ids = []
    for word in words:
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if len(encoded) != 1:
            raise ValueError(f"answer word {word!r} is {len(encoded)} tokens for this tokenizer; "
                             "choose words that are single tokens")
        ids.append(encoded[0])
    return ids


def yes_no_logit(logits: torch.Tensor, yes_ids: list[int], no_ids: list[int]) -> torch.Tensor:
    """log P(yes) − log P(no) from next-token logits, pooling word variants.

    Args:
        logits: (B, V) next-token logits at the answer position.
        yes_ids, no_ids: token ids of the yes / no variants.

    Returns:
        (B,) logit difference; sigmoid of it is P(yes) normalised over {yes, no}.
    """
    logits = logits.float()
    return torch.logsumexp(logits[:, yes_ids], dim=-1) - torch.logsumexp(logits[:, no_ids], dim=-1)


class YesTokenScorer(nn.Module, ScoreMediaMixin):
    """P("yes") scoring over any generative VLM loaded with `load_vlm`."""

    kind = "yes_token"

    def __init__(self, backbone: nn.Module, processor, config: YesTokenConfig):
        super().__init__()
        self.backbone = backbone
        self.processor = processor
        self.config = config
        self.family = FAMILIES[config.model_type]
        self.contract = MediaContract.from_dict(config.media) if config.media else \
            MediaContract.from_processor(processor, self.family.factor)
        config.media = self.contract.to_dict()
        self.yes_ids = resolve_word_ids(processor.tokenizer, config.yes_words)
        self.no_ids = resolve_word_ids(processor.tokenizer, config.no_words)
        self.dimensions = ["overall"]

    @classmethod
    def from_vlm(cls, name_or_path: str | Path, *, mode: str = "pointwise", dtype="auto",
                 attn_implementation: str = "auto", lora=None, freeze_vision: bool = False,
                 gradient_checkpointing: bool = False, media: MediaContract | None = None,
                 **config_kwargs) -> YesTokenScorer:
        """A yes-token scorer on a plain generative VLM (hub id or local directory)."""
        backbone, processor = load_vlm(name_or_path, dtype=dtype, attn_implementation=attn_implementation,
                                       lora=lora, freeze_vision=freeze_vision,
                                       gradient_checkpointing=gradient_checkpointing)
        config = YesTokenConfig(backbone=str(name_or_path), model_type=family_of(backbone.config).model_type,
                                mode=mode, media=media.to_dict() if media else {},
                                lora=asdict(lora) if lora is not None and not isinstance(lora, dict) else lora,
                                **config_kwargs)
        return cls(backbone, processor, config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask=None,
                **vision_inputs) -> torch.Tensor:
        """log P(yes) − log P(no) at the answer position (the last prompt token).

        Args:
            input_ids: (B, T) prompts ending with the generation prompt.
            attention_mask: (B, T)
            response_mask: unused (accepted so batches from the shared collator pass through).
            **vision_inputs: the other processor outputs, passed through untouched.

        Returns:
            (B, 1) logit differences (differentiable).
        """
        del response_mask
        hidden = inner_model(self.backbone)(input_ids=input_ids, attention_mask=attention_mask,
                                            **vision_inputs).last_hidden_state
        # Only the answer position goes through the LM head: (B, H) -> (B, V), not (B, T, V).
        last = pool_last_token(hidden, attention_mask)
        logits = self.backbone.get_output_embeddings()(last)
        return yes_no_logit(logits, self.yes_ids, self.no_ids)[:, None]

    # Trainer calls one of these (the name depends on the transformers release) when checkpointing is on.
    activation_checkpointing_enable = checkpoint_backbone
    gradient_checkpointing_enable = checkpoint_backbone

    # --- Scorer protocol -------------------------------------------------------------------------------------
    def _question(self, record, candidates) -> tuple[str, list]:
        """The question text and the media shown, for one candidate (pointwise) or both (pairwise)."""
        media = [m for c in candidates for m in c.media]
        texts = [c.text for c in candidates]
        # A single candidate is always asked pointwise, also when the scorer's mode is pairwise.
        pointwise = len(candidates) == 1
        template = self.config.template if not pointwise or self.config.mode == "pointwise" else "pointwise"
        if any(t is not None for t in texts) and not media:
            if pointwise:
                name = self.config.response_template if self.config.mode == "pointwise" else "pointwise_response"
                values = {"prompt": record.prompt, "response": texts[0] or ""}
            else:
                name = self.config.response_template
                values = {"prompt": record.prompt, "response_a": texts[0] or "", "response_b": texts[1] or ""}
            return render(YES_NO_TEMPLATES[name], **values), media
        text = render(YES_NO_TEMPLATES[template], prompt=record.prompt, kind=candidate_kind(media))
        return text, media

    def plan(self, record):
        """Pointwise: a unit per candidate; pairwise: one unit showing A then B."""
        from mmreward.data.schema import Candidate, PreferencePair

        key = f"yes:{self.config.template}:{self.config.response_template}"
        shared = record.media
        if not isinstance(record, PreferencePair) and record.response is None and record.media:
            # Generated media scored on their own are the candidate: asked about as "the image" / "the video",
            # as in generation pairs, not as a "response".
            groups, combine, shared = [[Candidate(media=list(record.media))]], "pointwise", []
        elif not isinstance(record, PreferencePair):
            groups, combine = [[Candidate(text=record.response, media=[])]], "pointwise"
        elif self.config.mode == "pairwise":
            groups, combine = [[record.a, record.b]], "pairwise"
        else:
            groups, combine = [[record.a], [record.b]], "pair"
        units = []
        for group in groups:
            text, media = self._question(record, group)
            units.append(build_unit(record.id, user_text=text, media=[*shared, *media],
                                    system=record.system, extra_key=key))
        return Plan(units, combine)

    def encoder(self) -> UnitEncoder:
        """A picklable unit -> processor-outputs function (runs in DataLoader workers)."""
        return UnitEncoder.for_scorer(self)

    def forward_batch(self, encodings: list[dict]) -> torch.Tensor:
        """(n, 1) P(yes) or logit difference, per `config.output`."""
        logit = forward_encodings(self, encodings)
        return torch.sigmoid(logit) if self.config.output == "prob" else logit

    def score(self, records, **kwargs):
        """Score pairs / pointwise records (see `mmreward.scoring.score_records`)."""
        if self.config.output == "logit" and self.config.mode == "pairwise":
            raise ValueError("pairwise scoring reports probabilities; use output='prob'")
        self.eval()
        return score_records(self, records, **kwargs)

    # --- persistence -------------------------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | Path, state_dict: dict | None = None) -> Path:
        """Write the backbone (or adapter) and the scorer config (`state_dict`: gathered weights under ZeRO-3/FSDP)."""
        out = Path(out_dir)
        save_backbone(self.backbone, self.processor, out, split_state_dict(state_dict, "backbone"))
        write_config(out, {"scorer": self.kind, **asdict(self.config)})
        return out

    @classmethod
    def from_pretrained(cls, path: str | Path, *, dtype="auto", attn_implementation: str = "auto",
                        device=None, trainable: bool = False, media: MediaContract | None = None) -> YesTokenScorer:
        """Load a checkpoint written by `save_pretrained` (`media` overrides the recorded contract, with a warning)."""
        path = Path(path)
        raw = read_config(path)
        if raw.pop("scorer", cls.kind) != cls.kind:
            raise CheckpointError(f"{path}: holds a different scorer kind; use mmreward.scoring.load_scorer")
        config = config_from_dict(YesTokenConfig, raw, path / CONFIG_NAME)
        check_media(config.media, path / CONFIG_NAME)
        backbone, processor = load_backbone(path, config.backbone, lora=config.lora is not None, dtype=dtype,
                                            attn_implementation=attn_implementation, device=device,
                                            trainable=trainable)
        scorer = cls(backbone, processor, config)
        scorer.contract = override_contract(scorer.contract, media, str(path))
        return scorer

    @classmethod
    def from_source(cls, path_or_id: str | Path, *, mode: str | None = None, **kwargs) -> YesTokenScorer:
        """`load_scorer` for a plain generative VLM (a directory or hub id): `from_vlm` in `mode` (default pointwise)."""
        return cls.from_vlm(plain_model_source(path_or_id), **({"mode": mode} if mode else {}), **kwargs)

    @classmethod
    def from_bt_config(cls, cfg) -> YesTokenScorer:
        """A yes-token scorer to train with `mmreward train bt` (`train.bt.BTConfig`: VLM, mode, LoRA, media)."""
        lora = cfg.lora_spec()
        scorer = cls.from_vlm(cfg.model, mode=cfg.yes_mode, lora=lora, freeze_vision=cfg.freeze_vision,
                              gradient_checkpointing=cfg.gradient_checkpointing, dtype=cfg.dtype,
                              attn_implementation=cfg.attn_implementation, max_length=cfg.max_length,
                              on_overflow=cfg.on_overflow)
        scorer.contract = cfg.media_contract(scorer.processor, family_of(scorer.backbone.config).model_type)
        scorer.config.media = scorer.contract.to_dict()
        return scorer
