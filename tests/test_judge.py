"""Strict verdict parsing, the GRPO format check and label matching of generative judges."""

import re

import pytest

from mmreward.judge import MASTER_KEYS, FreeTextVerdict, Verdict, format_ok, parse_verdict, verdict_matches
from mmreward.prompts import JUDGE_ANSWERS, JUDGE_DIMENSIONS, JUDGE_TEMPLATES, render

VIDEO_DIMS = ("VQ", "MQ", "TA", "overall")
CALL = '<tool_call>\n{"name": "select_frames", "arguments": {"target_frames": [3, 40]}}\n</tool_call>'


# --- valid answers ------------------------------------------------------------------------------------------

def test_pairwise_video_answer():
    text = ('<think>B flickers; A follows the prompt.</think>\n'
            '<answer>{"VQ": "A", "MQ": "B", "TA": "A", "overall": "A"}</answer>')
    assert parse_verdict(text, VIDEO_DIMS) == Verdict(
        ok=True, verdicts={"VQ": "A", "MQ": "B", "TA": "A", "overall": "A"}, reason=None, kind="pairwise")


@pytest.mark.parametrize("value, expected", [
    ("a", "A"), (" B ", "B"), ("TIE", "tie"), ("Tie", "tie"), ("1", "A"), ("2", "B"), ("0", "tie"),
    (1, "A"), (2, "B"), (0, "tie"),
])
def test_pairwise_values_case_and_vr_thinker_digits(value, expected):
    import json

    verdict = parse_verdict(f"<think>t</think><answer>{json.dumps({'overall': value})}</answer>")
    assert verdict.ok and verdict.verdicts == {"overall": expected}


def test_keys_match_case_insensitively_and_extra_keys_are_ignored():
    verdict = parse_verdict('<think>t</think><answer>{"Overall": "b", "note": "close call"}</answer>')
    assert verdict.ok and verdict.verdicts == {"overall": "B"}


def test_pointwise_answer():
    text = '<think>sharp but off-prompt</think>\n<answer>{"TA": 3, "VQ": 8.5, "overall": 5}</answer>\n'
    verdict = parse_verdict(text, ("TA", "VQ", "overall"), kind="pointwise")
    assert verdict.ok and verdict.verdicts == {"TA": 3.0, "VQ": 8.5, "overall": 5.0}
    assert verdict.kind == "pointwise"


def test_answer_without_think_and_text_around_it_is_read():
    # parse_verdict tolerates surrounding text; format_ok is the strict one.
    verdict = parse_verdict('Verdict follows. <answer>{"overall": "A"}</answer> Done.')
    assert verdict.ok and verdict.verdicts == {"overall": "A"}


@pytest.mark.parametrize("text, expected", [
    ("<think>t</think><final answer>Video 2 wins. \\boxed{2}</final answer>", "B"),
    ("<think>t</think>\\boxed{1}", "A"),
    ("</think> \\boxed{ 1 }", "A"),
])
def test_vr_thinker_boxed_overall(text, expected):
    verdict = parse_verdict(text)
    assert verdict.ok and verdict.verdicts == {"overall": expected}


def test_boxed_is_not_enough_for_other_dimensions_or_pointwise():
    verdict = parse_verdict("<think>t</think>\\boxed{1}", VIDEO_DIMS)
    assert not verdict.ok and "only the overall" in verdict.reason and "VQ, MQ, TA" in verdict.reason
    assert not parse_verdict("<think>t</think>\\boxed{7}", kind="pointwise").ok
    assert "several answers" in parse_verdict("<think>t</think>\\boxed{1} or \\boxed{2}").reason
    assert "invalid" in parse_verdict("<think>t</think>\\boxed{3}").reason
    # An <answer> block takes precedence; a \boxed inside it is not JSON.
    assert not parse_verdict("<think>t</think><answer>\\boxed{1}</answer>").ok


# --- failures -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("answer, reason", [
    ('{"VQ": "A", "MQ": "B", "overall": "A"}', "missing dimension(s): TA"),
    ('{"overall": "A"}', "missing dimension(s): VQ, MQ, TA"),
    ('{}', "missing dimension(s)"),
    ('{"VQ": "A", "MQ": "B", "TA": "C", "overall": "A"}', "invalid value for TA"),
    ('{"VQ": "A", "MQ": "B", "TA": "A", "overall": "Video A"}', "invalid value for overall"),
    ('{"VQ": "A", "MQ": "B", "TA": "A", "overall": 3}', "invalid value for overall"),
    ('{"VQ": "A", "MQ": "B", "TA": "A", "overall": true}', "invalid value for overall"),
    ('{"VQ": "A", "MQ": "B", "TA": "A", "overall": null}', "invalid value for overall"),
    ('{"VQ": "A", "MQ": "B", "TA": "A", "overall": ["A"]}', "invalid value for overall"),
    ('{"VQ": "A", "MQ": "B", "TA": "A", "overall": "A", "Overall": "B"}', "twice"),
    ("{'VQ': 'A', 'MQ': 'B', 'TA': 'A', 'overall': 'A'}", "not valid JSON"),
    ('["A", "B", "A", "A"]', "not a JSON object"),
    ('"A"', "not a JSON object"),
    ("A", "not valid JSON"),
    ("  ", "empty <answer>"),
])
def test_invalid_pairwise_answers(answer, reason):
    verdict = parse_verdict(f"<think>t</think><answer>{answer}</answer>", VIDEO_DIMS)
    assert not verdict.ok and verdict.verdicts == {}
    assert reason in verdict.reason


@pytest.mark.parametrize("answer, reason", [
    ('{"overall": 11}', "invalid value"),
    ('{"overall": 0}', "invalid value"),
    ('{"overall": "7"}', "invalid value"),
    ('{"overall": NaN}', "NaN is not a valid value"),
    ('{"overall": Infinity}', "Infinity is not a valid value"),
    ('{"overall": false}', "invalid value"),
    ('{"overall": "A"}', "invalid value"),
])
def test_invalid_pointwise_answers(answer, reason):
    verdict = parse_verdict(f"<think>t</think><answer>{answer}</answer>", kind="pointwise")
    assert not verdict.ok and reason in verdict.reason


def test_pointwise_score_range_is_configurable():
    text = '<think>t</think><answer>{"overall": 0.25}</answer>'
    assert not parse_verdict(text, kind="pointwise").ok
    assert parse_verdict(text, kind="pointwise", score_range=(0.0, 1.0)).verdicts == {"overall": 0.25}


@pytest.mark.parametrize("text", [
    '<think>t</think><answer>{"overall": "A"}</answer><answer>{"overall": "B"}</answer>',
    '<think>t</think><answer>{"overall": "A"}</answer> on second thought <answer>{"overall": "A"}</answer>',
    '<think>t</think><answer>{"overall": "A"}</answer></answer>',
    '<think>t</think><answer><answer>{"overall": "A"}</answer>',
])
def test_several_answer_blocks_fail(text):
    verdict = parse_verdict(text)
    assert not verdict.ok and "several answers" in verdict.reason


def test_answers_inside_think_do_not_count():
    inside = '<think>maybe <answer>{"overall": "A"}</answer></think>'
    assert parse_verdict(inside).reason == "no <answer> block"
    unclosed = '<think>maybe <answer>{"overall": "A"}</answer>'
    assert "unclosed <think>" in parse_verdict(unclosed).reason
    reopened = '<think>a</think><answer>{"overall": "A"}</answer><think>wait'
    assert "unclosed <think>" in parse_verdict(reopened).reason
    # An answer in the reasoning plus one after it: only the final one is read.
    both = '<think>draft <answer>{"overall": "B"}</answer></think><answer>{"overall": "A"}</answer>'
    assert parse_verdict(both).verdicts == {"overall": "A"}


@pytest.mark.parametrize("text", [
    '<think>t</think><answer>{"overall": "A"}',
    '<think>t</think>{"overall": "A"}</answer>',
    '<think>t</think></answer>{"overall": "A"}<answer>',
])
def test_unclosed_answer_fails(text):
    verdict = parse_verdict(text)
    assert not verdict.ok and "unclosed <answer>" in verdict.reason


EXPLOITS = [
    *MASTER_KEYS, "", "\n\n", "A", "B", "tie", "1", "The answer is", "The answer is A",
    "Let's solve this step by step.",
    "<answer></answer>", "<answer>{}</answer>", '{"overall": "A"}', "overall: A", "<answer>", "</answer>",
    "<think>", "</think>", "<think></think>", "<think>A</think>", "\\boxed{}", "Image 1 is better",
]


@pytest.mark.parametrize("text", EXPLOITS)
@pytest.mark.parametrize("kind", ["pairwise", "pointwise"])
def test_exploit_strings_never_parse(text, kind):
    verdict = parse_verdict(text, kind=kind)
    assert not verdict.ok and verdict.verdicts == {} and verdict.reason
    assert not format_ok(text)
    assert not format_ok(text, require_think=False)
    assert verdict_matches(verdict, {"overall": "A" if kind == "pairwise" else 7}) == {"overall": False}


def test_master_keys_are_the_papers():
    paper = {".", ":", "Thought process:", "Let's solve this problem step by step.", "Solution", "かいせつ"}
    assert paper <= set(MASTER_KEYS)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="kind"):
        parse_verdict("x", kind="listwise")
    with pytest.raises(ValueError, match="dimension"):
        parse_verdict("x", dimensions=())


# --- format_ok ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    '<think>A is sharper.</think>\n<answer>{"overall": "A"}</answer>',
    '\n  <think>A is sharper.</think><answer>{"overall": "A"}</answer>\n\n',
    f"<think>I need frame 40.</think>\n{CALL}",
    f"<think>Two looks.</think>\n{CALL}\n{CALL}\n",
    '<think></think><answer>{"overall": "Z"}</answer>',
])
def test_format_ok_accepts(text):
    assert format_ok(text)


@pytest.mark.parametrize("text", [
    '<answer>{"overall": "A"}</answer>',                                       # no reasoning
    CALL,
    '<think>t</think>\n<answer>{"overall": "A"}</answer> I am confident.',    # text after </answer>
    '<think>t</think>\nSo: <answer>{"overall": "A"}</answer>',                # text before <answer>
    '<think>t</think><answer>{"overall": "A"}</answer><answer>{"overall": "A"}</answer>',
    '<think>t <answer>{"overall": "B"}</answer></think><answer>{"overall": "A"}</answer>',
    '<think>t <tool_call>{"name": "crop"}</tool_call></think><answer>{"overall": "A"}</answer>',
    '<think>t <think>u</think></think><answer>{"overall": "A"}</answer>',
    '<think>t</think><answer>{"overall": "A"}',
    "<think>t</think><answer>  </answer>",
    "<think>t</think><answer>x</answer>",
    "<think>t</think><answer>{}</answer>",
    '<think>t</think><answer>["A"]</answer>',
    '<think>t</think><answer>{"overall": "A"}</answer>\n' + CALL,            # answer and call in one turn
    f'<think>t</think>{CALL}\n<answer>{{"overall": "A"}}</answer>',
    f"<think>t</think>{CALL} and then",
    "<think>t</think><tool_call>\n{not json}\n</tool_call>",
    '<think>t</think><tool_call>\n{"name": "crop"}',
    "<think>never closed",
    None,
])
def test_format_ok_rejects(text):
    assert not format_ok(text)


def test_format_ok_without_required_think():
    assert format_ok('<answer>{"overall": "A"}</answer>', require_think=False)
    assert format_ok(f"\n{CALL}", require_think=False)
    assert format_ok('<think>t</think><answer>{"overall": "A"}</answer>', require_think=False)
    assert not format_ok('Sure. <answer>{"overall": "A"}</answer>', require_think=False)


# --- verdict_matches ----------------------------------------------------------------------------------------

def test_verdict_matches_per_dimension():
    answer = '{"VQ": "A", "MQ": "tie", "TA": "B", "overall": "A"}'
    verdict = parse_verdict(f"<think>t</think><answer>{answer}</answer>", VIDEO_DIMS)
    labels = {"VQ": "a", "MQ": 0, "TA": "A", "overall": 1}
    assert verdict_matches(verdict, labels) == {"VQ": True, "MQ": True, "TA": False, "overall": True}
    assert verdict_matches(verdict, {"extra": "A"}) == {"extra": False}
    with pytest.raises(ValueError, match="invalid pairwise label"):
        verdict_matches(verdict, {"overall": "C"})


def test_verdict_matches_pointwise_and_failures():
    verdict = parse_verdict('<think>t</think><answer>{"overall": 7}</answer>', kind="pointwise")
    assert verdict_matches(verdict, {"overall": 7}) == {"overall": True}
    assert verdict_matches(verdict, {"overall": 6.5}) == {"overall": False}
    failed = parse_verdict("Solution", VIDEO_DIMS)
    assert verdict_matches(failed, {"VQ": "A", "overall": "A"}) == {"VQ": False, "overall": False}


# --- prompts ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(JUDGE_DIMENSIONS))
def test_judge_templates_render_and_their_example_answer_parses(name):
    text = render(JUDGE_TEMPLATES[name], prompt="a red ball bouncing", question="2+2?", answer="4",
                  response_a="A cat.", response_b="A dog.", response="A ball.")
    if isinstance(JUDGE_ANSWERS.get(name), FreeTextVerdict):
        # Published prose judges (LLaVA-Critic, VL-RewardBench's prompt): no tags; more in tests/agent/test_llava_critic.py.
        assert "a red ball bouncing" in text and "<answer>" not in text
        answers = JUDGE_ANSWERS[name]
        said = "Score: [80]" if answers.score_pattern else next(iter(answers))
        assert parse_verdict(f"Reasons. {said}.", answers=answers).ok
        return
    assert "<think>" in text and "<answer>" in text and "{prompt}" not in text
    if name in JUDGE_ANSWERS:  # a fixed-phrase answer (UnifiedReward-Think), as the template's example shows it
        phrase = next(iter(JUDGE_ANSWERS[name]))
        assert f"<answer>{phrase}</answer>" in text
        assert parse_verdict(f"<think>t</think><answer>{phrase}</answer>", answers=JUDGE_ANSWERS[name]).ok
        return
    example = "<think>t</think>" + re.search(r"<answer>\{.*?\}</answer>", text).group()  # the first example
    kind = "pairwise" if name.startswith("pairwise") else "pointwise"
    assert parse_verdict(example, JUDGE_DIMENSIONS[name], kind=kind).ok
    assert format_ok(example)


def test_tool_use_paragraph_names_the_tools():
    text = render(JUDGE_TEMPLATES["tool_use"], tools="select_frames to see other frames of a video")
    assert "call select_frames to see other frames of a video." in text and "<tool_call>" in text
