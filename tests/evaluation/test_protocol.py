"""The judge protocol: given / both / random order, K-sample majority vote, parse failures counted."""

import pytest
from testkit import make_pair

from mmreward.data.schema import PointwiseRecord, parse_record
from mmreward.evaluation.protocol import JudgeProtocol, apply_protocol, summarize_protocol
from mmreward.models.reward_model import RewardModel
from mmreward.models.yes_token import YesTokenScorer
from mmreward.scoring import ScoreResult

FLIP = {"A": "B", "B": "A", "tie": "tie"}


class ScriptedScorer:
    """A stand-in stochastic judge: call i returns script[i], one entry per shown record.

    An entry is (score_a, score_b) in the shown order, an error string, or None (a judge returning no scores).
    """

    kind = "scripted"
    dimensions = ["overall"]

    def __init__(self, script):
        self.script = list(script)
        self.shown = []

    def score(self, records, **kwargs):
        entries = self.script.pop(0)
        assert len(entries) == len(records)
        self.shown.append([(r.id, r.a.text) for r in records])
        out = []
        for record, entry in zip(records, entries):
            if isinstance(entry, str):
                out.append(ScoreResult(id=record.id, kind="pair", error=entry))
            elif entry is None:
                out.append(ScoreResult(id=record.id, kind="pair"))
            else:
                a, b = entry
                out.append(ScoreResult(id=record.id, kind="pair", score_a=a, score_b=b,
                                       scores={"overall": [a, b]},
                                       preferred="A" if a > b else "B" if b > a else "tie"))
        return out


def _text_pairs(n):
    rows = [make_pair(f"p{i}", {"text": f"first {i}"}, {"text": f"second {i}"}) for i in range(n)]
    return [parse_record(r) for r in rows]


@pytest.fixture(scope="module")
def media_pairs(scoring_media):
    rows = [make_pair("img", "i0.png", "i1.png"), make_pair("vid", "v0.mp4", "v1.mp4", label="B"),
            make_pair("mix", "v2.mp4", "i2.png"), make_pair("img2", "i2.png", "i0.png", label="B")]
    return [parse_record(r, base_dir=scoring_media) for r in rows]


@pytest.fixture(scope="module")
def head_model(tiny_checkpoint):
    return RewardModel.build(tiny_checkpoint("qwen2_5_vl")).eval()


@pytest.fixture(scope="module")
def pairwise_judge(tiny_checkpoint):
    return YesTokenScorer.from_vlm(tiny_checkpoint("qwen2_5_vl"), mode="pairwise").eval()


def test_protocol_validates_and_describes_itself():
    assert JudgeProtocol(order="random", k=5, seed=7).describe() | {"vote": ""} == {
        "order": "random", "k": 5, "seed": 7, "unparsed": "exclude", "vote": ""}
    for bad in ({"order": "reversed"}, {"k": 0}, {"unparsed": "drop"}):
        with pytest.raises(ValueError):
            JudgeProtocol(**bad)
    with pytest.raises(TypeError, match="preference pairs"):
        apply_protocol(ScriptedScorer([]), [PointwiseRecord(id="x", prompt="p", response="r")],
                       JudgeProtocol())


def test_both_orders_with_a_scalar_scorer_are_consistent_and_keep_the_margin(head_model, media_pairs):
    direct = head_model.score(media_pairs, progress=False)
    both = apply_protocol(head_model, media_pairs, JudgeProtocol(order="both"), progress=False)
    for result, plain in zip(both, direct):
        given, swapped = result.samples
        # Each candidate is scored alone: the swapped pair reuses the same units, so m_swapped = −m exactly.
        assert given["margin"] == swapped["margin"]
        assert result.consistent is True and result.parse_failures == 0
        assert result.margin == pytest.approx(plain.score_a - plain.score_b, abs=1e-6)
        assert result.preferred == plain.preferred and result.error is None
        assert result.scores["overall"] == pytest.approx([plain.score_a, plain.score_b], abs=1e-6)
    assert summarize_protocol(both)["consistency_rate"] == 1.0


def test_both_orders_with_the_pairwise_judge_average_two_different_questions(pairwise_judge, media_pairs):
    given = pairwise_judge.score(media_pairs, progress=False)
    swapped = pairwise_judge.score([p.swapped() for p in media_pairs], progress=False)
    both = apply_protocol(pairwise_judge, media_pairs, JudgeProtocol(order="both"), progress=False)
    m_given = [r.score_a - r.score_b for r in given]
    m_swapped = [r.score_a - r.score_b for r in swapped]
    # A pairwise judge sees the candidates in a different order, so the swapped margin is not simply −m.
    assert any(abs(g + s) > 1e-6 for g, s in zip(m_given, m_swapped))
    for result, g, s, rg, rs in zip(both, m_given, m_swapped, given, swapped):
        assert result.margin == pytest.approx((g - s) / 2, abs=1e-5)
        assert result.consistent == (rg.preferred == FLIP[rs.preferred])
        assert result.preferred == ("A" if g - s > 0 else "B" if g - s < 0 else "tie")
        # Per-dimension scores are un-swapped too: [A, B] is the mean of [gA, gB] and [sB, sA].
        expected = [(rg.score_a + rs.score_b) / 2, (rg.score_b + rs.score_a) / 2]
        assert result.scores["overall"] == pytest.approx(expected, abs=1e-5)


def test_random_order_is_seeded_reproducible_and_unswapped(pairwise_judge, media_pairs):
    protocol = JudgeProtocol(order="random", seed=3)
    first = apply_protocol(pairwise_judge, media_pairs, protocol, progress=False)
    again = apply_protocol(pairwise_judge, media_pairs, protocol, progress=False)
    orders = [r.samples[0]["order"] for r in first]
    assert orders == [r.samples[0]["order"] for r in again]
    assert orders.count("swapped") == len(media_pairs) // 2
    given = pairwise_judge.score(media_pairs, progress=False)
    swapped = pairwise_judge.score([p.swapped() for p in media_pairs], progress=False)
    for result, order, g, s in zip(first, orders, given, swapped):
        # A swapped sample is reported in the given pair's frame: margin negated, preference flipped.
        expected = g.score_a - g.score_b if order == "given" else -(s.score_a - s.score_b)
        assert result.margin == pytest.approx(expected, abs=1e-5)
        assert result.preferred == (g.preferred if order == "given" else FLIP[s.preferred])
        assert result.consistent is None


def test_random_order_draws_a_fresh_seeded_half_per_repeat():
    pairs = _text_pairs(6)

    def shown_orders(seed, k):
        scorer = ScriptedScorer([[(1.0, 0.0)] * 6] * k)
        apply_protocol(scorer, pairs, JudgeProtocol(order="random", k=k, seed=seed))
        return [tuple(text.startswith("second") for _, text in call) for call in scorer.shown]

    assert shown_orders(0, 3) == shown_orders(0, 3)
    assert all(sum(call) == 3 for call in shown_orders(0, 3))
    assert len({shown_orders(seed, 1)[0] for seed in range(8)}) > 1
    # The scripted judge always prefers the first shown candidate: half the pairs end up preferring B.
    scorer = ScriptedScorer([[(1.0, 0.0)] * 6])
    results = apply_protocol(scorer, pairs, JudgeProtocol(order="random", seed=1))
    assert summarize_protocol(results)["preferred"] == {"A": 3, "B": 3, "tie": 0}


SCRIPT = [  # pairs p0..p4, k = 3 calls
    [(0.9, 0.1), "parse failure: no verdict", (0.2, 0.8), "parse failure: no verdict", (0.9, 0.1)],
    [(0.3, 0.7), (0.6, 0.4), (0.5, 0.5), "parse failure: no verdict", (0.1, 0.9)],
    [(0.8, 0.2), "parse failure: no verdict", (0.1, 0.9), None, "parse failure: no verdict"],
]


def test_k_samples_take_the_majority_and_count_parse_failures():
    results = apply_protocol(ScriptedScorer(SCRIPT), _text_pairs(5), JudgeProtocol(k=3))
    p0, p1, p2, p3, p4 = results
    # p0: votes A, B, A -> A; margin = mean(0.8, -0.4, 0.6).
    assert (p0.preferred, p0.parse_failures) == ("A", 0) and p0.margin == pytest.approx(1.0 / 3)
    assert p0.scores["overall"] == pytest.approx([2.0 / 3, 1.0 / 3]) and p0.error is None
    # p1: two failures leave the vote; the one parsed repeat (A, margin 0.2) decides.
    assert (p1.preferred, p1.parse_failures) == ("A", 2) and p1.margin == pytest.approx(0.2)
    failure = "parse failure: no verdict"
    assert [s["error"] for s in p1.samples] == [failure, None, failure]
    # p2: B, tie, B -> B; margin = mean(-0.6, 0, -0.8).
    assert p2.preferred == "B" and p2.margin == pytest.approx(-1.4 / 3)
    # p3: nothing parsed (a judge returning no scores is a failure too): unparsed, reported, not dropped.
    assert (p3.preferred, p3.margin, p3.parse_failures) == (None, None, 3)
    assert "no scores" in p3.samples[2]["error"] and p3.scores == {}
    assert p3.error == "parse failure: no verdict; parse failure: the scorer returned no scores"
    assert p3.to_dict()["error"] == p3.error and "error" not in p0.to_dict()
    # p4: A, B and a failure: no majority among the parsed votes -> tie.
    assert (p4.preferred, p4.parse_failures) == ("tie", 1) and p4.margin == pytest.approx(0.0)
    assert summarize_protocol(results) == {
        "n": 5, "n_unparsed": 1, "preferred": {"A": 2, "B": 1, "tie": 1}, "parse_failures": 6, "samples": 15,
        "records_with_failures": 3, "n_consistency": 0, "consistency_rate": None}


def test_failures_can_vote_as_in_the_official_vlrb_aggregation():
    results = apply_protocol(ScriptedScorer(SCRIPT), _text_pairs(5), JudgeProtocol(k=3, unparsed="vote"))
    # p1: two of three repeats failed, so the failures hold the majority and the record is unparsed.
    assert [r.preferred for r in results] == ["A", None, "B", None, "tie"]
    assert results[1].margin is None and results[1].parse_failures == 2


def test_both_orders_combine_per_repeat_and_flag_position_bias():
    pairs = _text_pairs(2)
    # Shown records: [p0, p1, p0 swapped, p1 swapped]. p0's judge prefers whatever is shown first;
    # p1's swapped question fails.
    scorer = ScriptedScorer([[(0.9, 0.1), (0.3, 0.7), (0.7, 0.3), "parse failure: no verdict"]])
    p0, p1 = apply_protocol(scorer, pairs, JudgeProtocol(order="both"))
    assert [s["margin"] for s in p0.samples] == pytest.approx([0.8, -0.4])
    assert p0.margin == pytest.approx(0.2) and p0.preferred == "A" and p0.consistent is False
    assert p1.margin == pytest.approx(-0.4) and p1.preferred == "B" and p1.consistent is None
    assert p1.parse_failures == 1
    summary = summarize_protocol([p0, p1])
    assert (summary["n_consistency"], summary["consistency_rate"], summary["parse_failures"]) == (1, 0.0, 1)
