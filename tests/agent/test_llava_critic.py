"""LLaVA-Critic (LLaVA-OneVision weights) through our judge: its published pairwise / pointwise prompts and the
VL-RewardBench prompt as named templates, their prose verdicts parsed (`judge.FreeTextVerdict`, fuzzed), and judge
episodes on the tiny LLaVA-OneVision checkpoint that end in those verdicts.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit import make_pair

from mmreward.data.schema import parse_record
from mmreward.judge import MASTER_KEYS, FreeTextVerdict, parse_verdict
from mmreward.prompts import JUDGE_ANSWERS, JUDGE_BARE_MEDIA, JUDGE_DIMENSIONS, JUDGE_TEMPLATES, render

PAIRWISE = JUDGE_ANSWERS["llava_critic_pairwise"]
POINTWISE = JUDGE_ANSWERS["llava_critic_pointwise"]
VLRB = JUDGE_ANSWERS["vlrewardbench_pairwise"]


def test_templates_are_the_published_prompts():
    text = render(JUDGE_TEMPLATES["llava_critic_pairwise"], prompt="What this image presents?",
                  response_a="A cross.", response_b="This is a handwritten number seven.")
    # The model card's pairwise example with its question and responses filled in, character for character.
    assert text == (
        "Given an image and a corresponding question, please serve as an unbiased and fair judge to evaluate the "
        "quality of the answers provided by a Large Multimodal Model (LMM). Determine which answer is better and "
        "explain your reasoning with specific details. Your task is provided as follows:\nQuestion: [What this "
        "image presents?]\nThe first response: [A cross.]\nThe second response: [This is a handwritten number "
        "seven.]\nASSISTANT:\n")
    point = render(JUDGE_TEMPLATES["llava_critic_pointwise"], prompt="Q", response="R")
    assert "evaluate the quality of answer answers provided" in point     # the card's wording, typo included
    assert point.endswith("Score the response out of 100 and explain your reasoning with specific details. Your "
                          "task is provided as follows:\nQuestion: [Q]\nThe LMM response: [R]\nASSISTANT:\n ")
    vlrb = render(JUDGE_TEMPLATES["vlrewardbench_pairwise"], prompt="Q", response_a="x", response_b="y")
    assert vlrb.startswith(" You are a highly capable multimodal AI assistant") and "Answer 1: x\n\nAnswer 2: y" in vlrb
    for name in ("llava_critic_pairwise", "llava_critic_pointwise", "vlrewardbench_pairwise"):
        assert JUDGE_DIMENSIONS[name] == ("overall",) and name in JUDGE_BARE_MEDIA


@pytest.mark.parametrize("text, expected", [
    ("Both are fluent. However, the second response is better because it names the digit.", "B"),
    ("Response 1 is better than Response 2.", "A"),
    ("THE FIRST RESPONSE IS BETTER.", "A"),
    ("Answer 2 is better", "B"),
    ("Two responses are equally good.", "tie"),
    # The conclusion (the last phrase) decides.
    ("At first sight the first response is better. On a closer look, the second response is better.", "B"),
    ("<think>the first response is better?</think>Overall, the second answer is better.", "B"),
])
def test_llava_critic_pairwise_verdicts(text, expected):
    verdict = parse_verdict(text, answers=PAIRWISE)
    assert verdict.ok and verdict.verdicts == {"overall": expected} and verdict.kind == "pairwise"


@pytest.mark.parametrize("text, reason", [
    ("Both responses describe the image.", "no verdict phrase"),
    ("Response 12 is better", "no verdict phrase"),           # whole words: not "response 1"
    ("the first response is betterment", "no verdict phrase"),
    ("the first response is better <think>unfinished", "unclosed <think>"),
    ("", "empty output"),
])
def test_llava_critic_pairwise_failures(text, reason):
    verdict = parse_verdict(text, answers=PAIRWISE)
    assert not verdict.ok and verdict.reason.startswith(reason)


def test_prose_verdicts_give_only_the_overall_dimension():
    verdict = parse_verdict("Response 1 is better", dimensions=("VQ", "overall"), answers=PAIRWISE)
    assert not verdict.ok and "missing dimension(s): VQ" in verdict.reason


@pytest.mark.parametrize("text, score", [
    ("The answer is accurate and detailed. Score: [85]", 85.0),
    ("I would give it a score of 72.", 72.0),
    ("Overall: 90/100", 90.0),
    ("First draft score: 40. Final score: [55]", 55.0),
])
def test_llava_critic_pointwise_scores_out_of_100(text, score):
    # The caller's kind is "pairwise" here (the judge picks it from the template name); the template decides.
    verdict = parse_verdict(text, kind="pairwise", answers=POINTWISE)
    assert verdict.ok and verdict.verdicts == {"overall": score} and verdict.kind == "pointwise"


@pytest.mark.parametrize("text, reason", [("Score: [150]", "score 150 outside [0, 100]"),
                                          ("It is good.", "no score in the output")])
def test_llava_critic_pointwise_failures(text, reason):
    verdict = parse_verdict(text, answers=POINTWISE)
    assert not verdict.ok and verdict.reason == reason


def test_vlrewardbench_overall_judgment():
    assert parse_verdict("1. Accuracy: ...\nOverall Judgment: Answer 2 is better.", answers=VLRB).verdicts == {
        "overall": "B"}
    assert not parse_verdict("Overall Judgment: Answer X is better.", answers=VLRB).ok


@pytest.mark.parametrize("key", MASTER_KEYS)
def test_master_keys_do_not_fool_the_prose_parsers(key):
    for answers in (PAIRWISE, POINTWISE, VLRB):
        assert not parse_verdict(key, answers=answers).ok


def test_free_text_verdicts_survive_pickling():
    import pickle

    copy = pickle.loads(pickle.dumps(POINTWISE))
    assert isinstance(copy, FreeTextVerdict) and copy.score_range == (0.0, 100.0)
    assert copy.score_pattern == POINTWISE.score_pattern and dict(pickle.loads(pickle.dumps(PAIRWISE))) == PAIRWISE


# --- fuzz: model output is hostile input ------------------------------------------------------------------------

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
any_char = st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
                     st.sampled_from("\x00[]/:<>"))
PIECES = ["<think>", "</think>", "<answer>", "</answer>", "the first response is better", "Response 2 is better",
          "equally good", "Score: [", "]", "85", "/100", "score of ", "1e999", "9" * 3000, " ", "\n", "better",
          "answer 1 is better", "\x00"]
prose = st.lists(st.one_of(st.sampled_from(PIECES), st.text(any_char, max_size=8)), max_size=40).map("".join)


@FUZZ
@given(text=prose, which=st.sampled_from(["pairwise", "pointwise", "vlrb"]))
def test_prose_parsers_never_raise_and_give_only_allowed_values(text, which):
    answers = {"pairwise": PAIRWISE, "pointwise": POINTWISE, "vlrb": VLRB}[which]
    verdict = parse_verdict(text, answers=answers)
    assert verdict.ok or (verdict.reason and not verdict.verdicts)
    if verdict.ok and which == "pointwise":
        assert 0.0 <= verdict.verdicts["overall"] <= 100.0
    elif verdict.ok:
        assert verdict.verdicts["overall"] in {"A", "B", "tie"}


@FUZZ
@given(text=prose)
def test_a_final_verdict_sentence_decides_whatever_came_before(text):
    verdict = parse_verdict(text + "\nIn conclusion, the second response is better.", answers=PAIRWISE)
    if verdict.ok:
        assert verdict.verdicts == {"overall": "B"}
    else:   # only an unfinished reasoning block hides a final answer
        assert verdict.reason.startswith("unclosed <think>")


def test_huge_output_is_read_from_its_end():
    text = "the first response is better " * 200_000 + "Finally, Response 2 is better."
    assert parse_verdict(text, answers=PAIRWISE).verdicts == {"overall": "B"}


# --- judge episodes on the tiny LLaVA-OneVision ------------------------------------------------------------------

def _judge(tiny_checkpoint, template, reply):
    from mmreward.agent.judge_scorer import JudgeConfig, JudgeScorer
    from mmreward.models.backbone import load_vlm

    model, processor = load_vlm(tiny_checkpoint("llava_onevision"), device="cpu")
    seen = []

    def policy(conversations, images):
        from mmreward.agent.generate import render as render_chat

        seen.append((render_chat(processor, conversations[0], None, add_generation_prompt=True), images[0]))
        return [reply]

    config = JudgeConfig(backbone="tiny", tools=[], template=template, initial_frames=2)
    return JudgeScorer(model, processor, config, generate_fn=policy), seen


def test_llava_critic_pairwise_episode_on_a_response_pair(tiny_checkpoint, scoring_media):
    judge, seen = _judge(tiny_checkpoint, "llava_critic_pairwise",
                         "The first response misreads the image. Therefore, the second response is better.")
    record = parse_record(make_pair("r", {"text": "a cross"}, {"text": "the digit seven"}, shared="i0.png",
                                    prompt="What does this image present?", label="B"), base_dir=scoring_media)
    result = judge.score([record], progress=False)[0]
    assert result.error is None and result.preferred == "B"
    text, images = seen[0]
    # The image first and unlabelled, then the card's prompt, in the -hf chat format.
    assert text.startswith("<|im_start|>user\n<image>\nGiven an image and a corresponding question")
    assert "The first response: [a cross]\nThe second response: [the digit seven]\nASSISTANT:\n<|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\n") and len(images) == 1


def test_llava_critic_pointwise_episode_scores_out_of_100(tiny_checkpoint, scoring_media):
    judge, seen = _judge(tiny_checkpoint, "llava_critic_pointwise", "Accurate and complete. Score: [85]")
    record = parse_record({"id": "q", "prompt": "What is shown?", "media": [{"type": "image", "path": "i0.png"}],
                           "response": "A red square."}, base_dir=scoring_media)
    result = judge.score([record], progress=False)[0]
    assert result.error is None and result.score == 85.0
    assert "The LMM response: [A red square.]" in seen[0][0]


def test_unparsable_critic_output_is_a_reported_failure(tiny_checkpoint, scoring_media):
    judge, _ = _judge(tiny_checkpoint, "llava_critic_pairwise", "Both are fine, I cannot decide.")
    record = parse_record(make_pair("r", {"text": "x"}, {"text": "y"}, shared="i0.png"), base_dir=scoring_media)
    result = judge.score([record], progress=False)[0]
    assert result.error.startswith("parse failure: no verdict phrase")
