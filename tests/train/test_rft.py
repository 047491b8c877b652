"""Rejection sampling keeps exactly the episodes whose verdicts are all correct (optionally also when swapped)."""

import json

import pytest
from testkit import make_pair

from mmreward.agent.judge_scorer import JudgeConfig, JudgeScorer
from mmreward.data.schema import parse_record
from mmreward.train.rft import RFTConfig, episode_correct, sample_and_filter


def answer(**verdict):
    return "<think>.</think><answer>" + json.dumps(verdict) + "</answer>"


class Cycle:
    """A scripted judge policy: hands out the given answers in turn, one per episode."""

    def __init__(self, answers):
        self.answers, self.i = answers, 0

    def __call__(self, conversations, images):
        out = []
        for _ in conversations:
            out.append(self.answers[self.i % len(self.answers)])
            self.i += 1
        return out


@pytest.fixture
def judge(tiny_checkpoint):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_checkpoint("qwen2_5_vl"))
    return JudgeScorer(None, processor, JudgeConfig(backbone="x", tools=[], initial_frames=2))


def _cfg(**kw):
    return RFTConfig(model="m", train_data="d", samples_per_record=3, **kw)


def test_only_fully_correct_episodes_are_kept(judge, scoring_media):
    record = parse_record(make_pair("p", "v0.mp4", "v1.mp4", label="A", dimensions={"VQ": "B", "MQ": "tie"}),
                          base_dir=scoring_media)
    right = answer(VQ="B", MQ="tie", TA="A", overall="A")  # TA is unlabelled: checked against overall (A)
    wrong_dim = answer(VQ="A", MQ="tie", TA="A", overall="A")
    judge.generate_fn = Cycle([right, wrong_dim, "Thought process:"])
    kept, stats = sample_and_filter(judge, [record], _cfg(swap_augment=False, require_swap_agreement=False))
    assert [t.id for t in kept] == ["p#0"]
    assert stats["episodes"] == 3 and stats["kept"] == 1 and stats["parse_failures"] == 1
    assert stats["acceptance"] == pytest.approx(1 / 3)
    assert stats["acceptance_per_dimension"]["VQ"] == pytest.approx(1 / 3)
    assert stats["acceptance_per_dimension"]["MQ"] == pytest.approx(2 / 3)
    assert stats["acceptance_per_dimension"]["overall"] == pytest.approx(2 / 3)
    assert stats["tool_use_rate"] == 0.0 and stats["records_with_a_kept_episode"] == 1


def test_swap_agreement_filters_position_biased_episodes(judge, scoring_media):
    record = parse_record(make_pair("p", "i0.png", "i1.png", label="A"), base_dir=scoring_media)
    # Always answering "A" is right on the pair and wrong on its swap: rejected when agreement is required.
    judge.generate_fn = Cycle([answer(overall="A")])
    kept, _ = sample_and_filter(judge, [record], _cfg(swap_augment=False, require_swap_agreement=False))
    assert len(kept) == 3
    kept, stats = sample_and_filter(judge, [record], _cfg(swap_augment=False, require_swap_agreement=True))
    assert kept == [] and stats["swap_agreement_required"]
    # The defaults sample both orders (6 episodes) and let each order check the other: nothing is kept.
    kept, stats = sample_and_filter(judge, [record], _cfg())
    assert kept == [] and stats["episodes"] == 6 and stats["swap_partner_correct"] == 0.5  # the swap episodes' partners were right


def test_episode_correct_by_hand(scoring_media):
    from mmreward.data.trajectory import Trajectory

    record = parse_record(make_pair("p", "i0.png", "i1.png", label="tie"), base_dir=scoring_media)
    traj = Trajectory(id="t", messages=[], verdict={"overall": "tie"}, meta={"template": "pairwise_image"})
    assert episode_correct(traj, record) == {"overall": True}
    traj.verdict = None
    assert episode_correct(traj, record) == {"overall": False}


def test_config_checks():
    with pytest.raises(ValueError, match="model and train_data are required"):
        RFTConfig()
    with pytest.raises(ValueError, match="samples_per_record"):
        RFTConfig(model="m", train_data="d", samples_per_record=0)
