"""Yes-token scoring: P(yes) normalised over {yes, no}, pointwise and pairwise, differentiable, save/load."""

import pytest
import torch
from testkit import make_pair

from mmreward.data.collate import pad_batch
from mmreward.data.schema import parse_record
from mmreward.models.yes_token import YesTokenScorer, resolve_word_ids, yes_no_logit


def test_yes_no_logit_by_hand():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    # yes = {1}, no = {3}: log softmax difference = 1 - 3.
    assert torch.allclose(yes_no_logit(logits, [1], [3]), torch.tensor([-2.0]))
    # Variants pool: yes = {1, 2} -> log(e^1 + e^2) - 3.
    expected = torch.log(torch.exp(torch.tensor(1.0)) + torch.exp(torch.tensor(2.0))) - 3.0
    assert torch.allclose(yes_no_logit(logits, [1, 2], [3]), expected.reshape(1))


def _encoded(scorer, records):
    enc = scorer.encoder()
    return [enc(u) for r in records for u in scorer.plan(r).units]


def test_probability_is_a_softmax_over_the_two_answer_logits(tiny_checkpoint, scoring_media):
    scorer = YesTokenScorer.from_vlm(tiny_checkpoint("qwen2_5_vl"), yes_words=["yes"], no_words=["no"]).eval()
    record = parse_record(make_pair("p", "v0.mp4", "i0.png"), base_dir=scoring_media)
    encodings = _encoded(scorer, [record])
    with torch.no_grad():
        p_yes = scorer.forward_batch(encodings)[:, 0]
        batch = pad_batch(encodings, scorer.processor.tokenizer.pad_token_id)
        logits = scorer.backbone(**batch).logits
    last = batch["attention_mask"].sum(dim=1) - 1
    yes, no = scorer.yes_ids[0], scorer.no_ids[0]
    for row in range(2):
        answer = logits[row, last[row]]
        manual = torch.softmax(torch.stack([answer[yes], answer[no]]), dim=0)
        assert torch.allclose(p_yes[row], manual[0], atol=1e-5)
        assert torch.allclose(p_yes[row] + manual[1], torch.tensor(1.0), atol=1e-5)


def test_pairwise_mode_scores_both_candidates_in_one_question(tiny_checkpoint, scoring_media):
    scorer = YesTokenScorer.from_vlm(tiny_checkpoint("qwen2_5_vl"), mode="pairwise")
    records = [parse_record(make_pair("g", "v0.mp4", "v1.mp4"), base_dir=scoring_media),
               parse_record(make_pair("r", {"text": "yes it is"}, {"text": "no"}, shared="i1.png"),
                            base_dir=scoring_media)]
    plan = scorer.plan(records[0])
    assert plan.combine == "pairwise" and len(plan.units) == 1 and len(plan.units[0].media) == 2
    assert "Is the first video better than the second?" in plan.units[0].messages[-1]["content"][-1]["text"]
    results = scorer.score(records, progress=False)
    for result in results:
        assert result.score_a + result.score_b == pytest.approx(1.0)
        assert result.preferred == ("A" if result.score_a > 0.5 else "B")


def test_gradients_flow_so_the_scorer_can_be_trained(tiny_checkpoint, scoring_media):
    scorer = YesTokenScorer.from_vlm(tiny_checkpoint("qwen2_5_vl"))
    record = parse_record(make_pair("p", "i0.png", "i1.png"), base_dir=scoring_media)
    batch = pad_batch(_encoded(scorer, [record]), scorer.processor.tokenizer.pad_token_id)
    logit = scorer(**batch)
    assert logit.shape == (2, 1)
    (logit[0, 0] - logit[1, 0]).backward()
    grad = scorer.backbone.lm_head.weight.grad
    assert grad is not None and grad[scorer.yes_ids].abs().sum() > 0
    assert sum(p.numel() for p in scorer.parameters()) == sum(p.numel() for p in scorer.backbone.parameters())


def test_multi_token_answer_word_is_an_error(tiny_checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint("qwen2_5_vl"))
    with pytest.raises(ValueError, match="answer word 'absolutely not' is \\d+ tokens"):
        resolve_word_ids(tok, ["absolutely not"])


def test_save_load_round_trip(tiny_checkpoint, scoring_media, tmp_path):
    scorer = YesTokenScorer.from_vlm(tiny_checkpoint("qwen3_vl"), mode="pairwise")
    records = [parse_record(make_pair("g", "v0.mp4", "v2.mp4"), base_dir=scoring_media)]
    before = scorer.score(records, progress=False)[0]
    scorer.save_pretrained(tmp_path / "yes")
    loaded = YesTokenScorer.from_pretrained(tmp_path / "yes")
    assert loaded.config.mode == "pairwise" and loaded.contract.video.factor == 32
    assert loaded.score(records, progress=False)[0].score_a == before.score_a
