"""Bias probes: position consistency, length bias (hand-computed), and media-contract sensitivity."""

import math
from types import SimpleNamespace

import pytest
from testkit import make_pair

from mmreward.data.collate import MediaContract
from mmreward.data.media import VideoSampling
from mmreward.data.schema import PointwiseRecord, parse_record
from mmreward.evaluation.probes import (
    PROBES,
    fps_sensitivity,
    frame_count_sensitivity,
    length_bias,
    media_contract,
    pearson,
    position_consistency,
    ranks,
    resolution_sensitivity,
    spearman,
)
from mmreward.models.reward_model import RewardModel
from mmreward.models.yes_token import YesTokenScorer
from mmreward.scoring import ScoreResult


@pytest.fixture(scope="module")
def head_model(tiny_checkpoint):
    return RewardModel.build(tiny_checkpoint("qwen2_5_vl")).eval()


@pytest.fixture(scope="module")
def records(scoring_media):
    rows = [make_pair("vid", "v0.mp4", "v1.mp4"), make_pair("img", "i0.png", "i1.png", label="B"),
            make_pair("txt", {"text": "a red square"}, {"text": "a square"})]
    return [parse_record(r, base_dir=scoring_media) for r in rows]


def test_statistics_by_hand():
    assert ranks([3, 1, 2, 2]) == [4.0, 1.0, 2.5, 2.5]
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [5, 5, 5]) is None and pearson([1], [2]) is None
    # Ranks [1, 2, 3] vs [1, 3, 2]: d = (0, 1, 1), rho = 1 − 6·2 / (3·8) = 0.5.
    assert spearman([1, 2, 3], [10, 30, 20]) == pytest.approx(0.5)


def test_position_consistency_is_trivial_for_a_pointwise_scorer(head_model, records):
    report = position_consistency(head_model, records, progress=False)
    assert report["combine"] == "pair" and report["trivial"] is True
    assert report["consistency"] == 1.0 and report["n_compared"] == 3
    assert report["mean_abs_margin_sum"] == 0.0 and report["inconsistent_ids"] == []
    # Each pair is A-preferred in one order and B-preferred in the other: half the votes go to the first slot.
    assert report["first_position_rate"] == pytest.approx(0.5)


def test_position_consistency_measures_a_pairwise_judge(tiny_checkpoint, records):
    judge = YesTokenScorer.from_vlm(tiny_checkpoint("qwen2_5_vl"), mode="pairwise").eval()
    given = judge.score(records, progress=False)
    swapped = judge.score([r.swapped() for r in records], progress=False)
    flip = {"A": "B", "B": "A", "tie": "tie"}
    report = position_consistency(judge, records, progress=False)
    consistent = [g.preferred == flip[s.preferred] for g, s in zip(given, swapped)]
    sums = [abs((g.score_a - g.score_b) + (s.score_a - s.score_b)) for g, s in zip(given, swapped)]
    assert report["combine"] == "pairwise" and report["trivial"] is False
    assert report["consistency"] == pytest.approx(sum(consistent) / 3)
    assert report["mean_abs_margin_sum"] == pytest.approx(sum(sums) / 3, abs=1e-5)
    assert report["mean_abs_margin_sum"] > 0
    assert report["inconsistent_ids"] == [r.id for r, ok in zip(records, consistent) if not ok]


LENGTH_ROWS = [  # (a text, b text, label, score_a, score_b)
    ("xxxx", "xx", "A", 0.9, 0.1),  # chosen longer, model right, prefers longer
    ("x", "xxx", "A", 0.2, 0.8),  # chosen shorter, model wrong, prefers longer
    ("xx", "xxxxx", "B", 0.3, 0.7),  # chosen longer, model right, prefers longer
    ("xxx", "x", "B", 0.4, 0.6),  # chosen shorter, model right, prefers shorter
    ("yy", "zz", "tie", 0.5, 0.5),  # equal lengths, human tie: only in the correlations
]


def _length_pairs():
    rows = LENGTH_ROWS + [("failed", "f", "A", None, None)]
    return [parse_record(make_pair(f"p{i}", {"text": a}, {"text": b}, label=label))
            for i, (a, b, label, _, _) in enumerate(rows)]


def test_length_bias_by_hand():
    pairs = _length_pairs()
    results = [ScoreResult(id=p.id, kind="pair", score_a=r[3], score_b=r[4])
               for p, r in zip(pairs, LENGTH_ROWS)]
    results.append(ScoreResult(id="p5", kind="pair", error="parse failure: no verdict"))
    report = length_bias(results, pairs)
    assert (report["n"], report["n_used"], report["n_failed"], report["n_unmeasured"]) == (6, 5, 1, 0)
    # Points (length, reward): A sides (4,.9) (1,.2) (2,.3) (3,.4) (2,.5),
    # B sides (2,.1) (3,.8) (5,.7) (1,.6) (2,.5).
    # Mean length 2.5, mean reward 0.5; Σdx·dy = 1.8, Σdx² = 14.5, Σdy² = 0.6 -> r = 1.8 / √(14.5·0.6).
    assert report["pearson"] == pytest.approx(1.8 / math.sqrt(14.5 * 0.6))
    # Average ranks (mean 5.5): lengths [9, 1.5, 4.5, 7.5, 4.5, 4.5, 7.5, 10, 1.5, 4.5],
    # rewards [10, 2, 3, 4, 5.5, 1, 9, 8, 7, 5.5]; Σdx·dy = 46, Σdx² = 76.5, Σdy² = 82.
    assert report["spearman"] == pytest.approx(46 / math.sqrt(76.5 * 82))
    # Within pairs: (len_a − len_b, margin) = (2, .8) (−2, −.6) (−3, −.4) (2, −.2) (0, 0),
    # means (−0.2, −0.08);
    # Σdx·dy = 3.6 − 5·0.016 = 3.52, Σdx² = 21 − 0.2 = 20.8, Σdy² = 1.2 − 0.032 = 1.168.
    assert report["margin_pearson"] == pytest.approx(3.52 / math.sqrt(20.8 * 1.168))
    assert report["chosen_shorter"] == {"n": 2, "accuracy": 0.5}
    assert report["chosen_longer"] == {"n": 2, "accuracy": 1.0}
    assert (report["n_unequal"], report["prefers_longer"]) == (4, 0.75)


def test_length_bias_takes_scores_or_a_scorer():
    pairs = _length_pairs()
    scores = [(r[3], r[4]) for r in LENGTH_ROWS] + [(None, None)]
    fake = SimpleNamespace(score=lambda recs, **kw: [ScoreResult(id=p.id, kind="pair", score_a=a, score_b=b)
                                                     for p, (a, b) in zip(recs, scores)])
    from_scores, from_scorer = length_bias(scores, pairs), length_bias(fake, pairs)
    assert from_scores.pop("protocol") == "scores given by the caller"
    assert from_scorer.pop("protocol") == "each pair scored once, as given"
    assert from_scores == from_scorer
    media_only = parse_record(make_pair("m", "i0.png", "i1.png"))
    assert length_bias([(0.1, 0.2)], [media_only])["n_unmeasured"] == 1


class RecordingEncoder:
    """Wraps a scorer's encoder and records the temporal grid of every encoded video."""

    def __init__(self, inner, seen):
        self.inner, self.seen = inner, seen

    def __call__(self, unit):
        encoded = self.inner(unit)
        if "video_grid_thw" in encoded:
            self.seen.append(int(encoded["video_grid_thw"][0, 0]))
        return encoded


def test_frame_count_sensitivity_rescores_each_setting_and_restores_the_contract(head_model, records,
                                                                               monkeypatch):
    saved = head_model.contract
    seen = []
    encoder = head_model.encoder
    monkeypatch.setattr(head_model, "encoder", lambda: RecordingEncoder(encoder(), seen))
    # v0 has 20 frames, v1 30: 24 frames fails v0's side, reported per setting with on_error="skip".
    report = frame_count_sensitivity(head_model, records, frame_counts=(4, 8, 24), on_error="skip",
                                     progress=False)
    assert head_model.contract is saved and saved.video.nframes is None
    assert (report["n_records"], report["n_skipped"], report["failures"]) == (1, 2, [0, 0, 1])
    # The failure says why (the video is shorter than the requested frame count), not just how many.
    assert list(report["failure_reasons"]) == ["24"] and report["failure_reasons"]["24"].startswith("1 failed: vid")
    assert "24" in report["failure_reasons"]["24"].split("failed:", 1)[1] and "each record scored" in report["protocol"]
    row = report["per_record"][0]
    assert row["id"] == "vid" and len(row["values"]) == 3 and row["values"][2] is None
    assert row["spread"] == pytest.approx(abs(row["values"][0] - row["values"][1])) and row["spread"] >= 0
    assert report["mean_spread"] == row["spread"] and row["flipped"] in (True, False)
    assert report["flip_rate"] == float(row["flipped"]) and report["mean_score"] == [None] * 3
    # Each setting decoded its own frames (t = frames / 2): the media cache keys on the sampling request.
    assert seen[:4] == [2, 2, 4, 4] and set(seen) == {2, 4, 12}


def test_fps_and_resolution_sensitivity(head_model, records, scoring_media):
    report = fps_sensitivity(head_model, records, fps_values=(2, 4), progress=False)
    assert report["n_records"] == 1 and report["failures"] == [0, 0] and report["mean_spread"] >= 0
    pointwise = PointwiseRecord(id="pt", prompt="p", media=parse_record(
        make_pair("x", "i2.png", "i0.png"), base_dir=scoring_media).a.media, response="a picture")
    saved = head_model.contract.to_dict()
    report = resolution_sensitivity(head_model, [*records, pointwise], max_pixels_values=(3136, 12544),
                                    progress=False)
    assert head_model.contract.to_dict() == saved
    assert (report["n_records"], report["n_skipped"]) == (3, 1)
    assert all(v is not None for v in report["mean_score"]) and report["n_flip_checked"] == 2
    assert [r["kind"] for r in report["per_record"]] == ["pair", "pair", "pointwise"]


def test_media_contract_is_restored_on_error_and_covers_sampling_only_scorers():
    def fail(records, **kw):
        raise RuntimeError("boom")

    original = MediaContract()
    scorer = SimpleNamespace(contract=original, score=fail)
    record = parse_record(make_pair("v", "v0.mp4", "v1.mp4"))
    with pytest.raises(RuntimeError, match="boom"):
        frame_count_sensitivity(scorer, [record])
    assert scorer.contract is original
    clip_like = SimpleNamespace(sampling=VideoSampling(nframes=8))
    with media_contract(clip_like, MediaContract(video=VideoSampling(nframes=4))):
        assert clip_like.sampling.nframes == 4
    assert clip_like.sampling.nframes == 8
    with pytest.raises(TypeError, match="no media contract"):
        fps_sensitivity(SimpleNamespace(score=fail), [record])
    with pytest.raises(ValueError):  # an invalid setting fails before any scoring
        frame_count_sensitivity(scorer, [record], frame_counts=(0,))
    assert set(PROBES) == {"position_consistency", "length_bias", "frame_count_sensitivity",
                           "fps_sensitivity", "resolution_sensitivity"}


class PositionJudge:
    """A judge that always prefers the candidate shown first (the classic position bias)."""

    kind = "judge"
    dimensions = ["overall"]

    def score(self, records, **kwargs):
        return [ScoreResult(id=r.id, kind="pair", score_a=1.0, score_b=0.0, preferred="A") for r in records]


class LengthLover:
    """A reward model whose reward is the response length in characters."""

    kind = "head"
    dimensions = ["overall"]

    def score(self, records, **kwargs):
        return [ScoreResult(id=r.id, kind="pair", score_a=float(len(r.a.text)), score_b=float(len(r.b.text)))
                for r in records]


def test_probes_find_the_bias_a_scorer_has():
    pairs = _length_pairs()[:5]  # the hand-worked LENGTH_ROWS: 2 chosen-longer, 2 chosen-shorter, 1 tie
    position = position_consistency(PositionJudge(), pairs)
    assert position["first_position_rate"] == 1.0 and position["consistency"] == 0.0
    assert position["trivial"] is False and sorted(position["inconsistent_ids"]) == [p.id for p in pairs]
    length = length_bias(LengthLover(), pairs)
    assert length["prefers_longer"] == 1.0 and length["margin_pearson"] == pytest.approx(1.0)
    assert length["chosen_longer"] == {"n": 2, "accuracy": 1.0}
    assert length["chosen_shorter"] == {"n": 2, "accuracy": 0.0}
    assert length["accuracy"] == {"n": 4, "accuracy": 0.5} and length["failure_reasons"] is None


def test_length_bias_under_the_evaluation_protocol_matches_the_headline():
    # A position-biased judge looks perfect on pairs whose chosen answer is shown first, and is exposed by
    # order "both"; the probe must score under the same protocol as the evaluation, or its accuracy and the
    # headline disagree with no explanation (the "overall 1.0 vs probe 0.35").
    from mmreward.evaluation.protocol import JudgeProtocol, apply_protocol

    pairs = [parse_record(make_pair(f"q{i}", {"text": "x" * (i + 1)}, {"text": "yy"}, label="A")) for i in range(4)]
    for order in ("given", "both"):
        protocol = JudgeProtocol(order=order)
        headline = [r.margin > 0 for r in apply_protocol(PositionJudge(), pairs, protocol)]
        report = length_bias(PositionJudge(), pairs, protocol=protocol)
        assert report["accuracy"]["accuracy"] == sum(headline) / len(headline)
        assert f"'order': '{order}'" in report["protocol"]
    assert length_bias(PositionJudge(), pairs)["accuracy"]["accuracy"] == 1.0  # given order: looks perfect
    assert length_bias(PositionJudge(), pairs, protocol=JudgeProtocol(order="both"))["accuracy"]["accuracy"] == 0.0
