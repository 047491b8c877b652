"""Model output is hostile input: every parser of generated text returns a parse failure for any string.

Fuzzed with hypothesis (arbitrary unicode including lone surrogates and NUL, tag soup, deep brackets, huge numbers,
well-formed calls with arbitrary JSON arguments) over `parse_tool_calls`, `load_json`, `parse_verdict`,
`format_ok`, `run_episodes` and the GRPO rewards; plus explicit regressions with 1,000 and 100,000 nested
brackets in each place the issue named (they raised `RecursionError`).
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmreward.agent.env import JudgeEnv
from mmreward.agent.loop import run_episodes
from mmreward.agent.protocol import ToolCall, parse_tool_calls
from mmreward.agent.untrusted import MAX_JSON_DEPTH, clean_text, json_too_deep, load_json, shown
from mmreward.judge import Verdict, format_ok, parse_verdict
from mmreward.train.reward_fns import REWARD_FNS, message_text

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PAIR = json.dumps({"id": "p", "prompt": "which is better?", "a": {"text": "x"}, "b": {"text": "y"},
                   "label": "A", "dimensions": {"VQ": "B"}})
POINTWISE = json.dumps({"id": "q", "prompt": "rate it", "media": [], "response": "z", "scores": {"overall": 7.0}})

# --- strategies -------------------------------------------------------------------------------------------------

any_char = st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
                     st.sampled_from("\x00[]{}\"\\:,<>/"))
PIECES = ["<tool_call>", "</tool_call>", "<answer>", "</answer>", "<think>", "</think>", "\\boxed{1}", "\\boxed{",
          '{"name": "crop", "arguments": ', '{"name": "select_frames", "arguments": {"target_frames": [1]}}',
          '{"overall": "A"}', '{"overall": 7}', '"overall"', '"arguments": "', "[", "]", "{", "}", '"', "\\",
          "\\ud800", "\\udfff", "\\u0000", "NaN", "Infinity", "1e999", "9" * 5000, "-", ",", ":", "\n", " ", "\x00"]
tag_soup = st.lists(st.one_of(st.sampled_from(PIECES), st.text(any_char, max_size=8)), max_size=40).map("".join)
deep = st.builds(lambda n, open_, wrap: wrap.format(open_ * n + {"[": "]", '{"a": ': "}"}[open_] * (n // 2)),
                 st.sampled_from([0, 1, 31, 32, 33, 500, 999, 1000, 3000, 20_000]), st.sampled_from(["[", '{"a": ']),
                 st.sampled_from(["{}", "<tool_call>{}</tool_call>", "<think>t</think><answer>{}</answer>",
                                  '<tool_call>{{"name": "crop", "arguments": {}}}</tool_call>',
                                  '<answer>{{"overall": {}}}</answer>']))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(any_char, max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=20)


def _call_text(name, arguments, surrogate_escapes):
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=surrogate_escapes)
    return f"<think>look</think><tool_call>\n{body}\n</tool_call>"


tool_calls = st.builds(_call_text, st.sampled_from(["select_frames", "crop", "calculator", "search", "x" * 100]),
                       st.one_of(json_values, st.fixed_dictionaries(
                           {}, optional={"box": json_values, "image": json_values, "target_frames": json_values,
                                         "timestamps": json_values, "start": json_values, "video": json_values,
                                         "expression": st.text(any_char, max_size=30), "k": json_values})),
                       st.booleans())
hostile = st.one_of(st.text(any_char, max_size=200), tag_soup, deep, deep, tool_calls)


# --- the parsers ----------------------------------------------------------------------------------------------

@FUZZ
@given(hostile)
def test_parse_tool_calls_never_raises(text):
    calls, errors, content = parse_tool_calls(text)
    assert all(isinstance(c, ToolCall) and isinstance(c.arguments, dict) for c in calls)
    assert all(isinstance(e, str) and len(e) < 2000 for e in errors) and isinstance(content, str)


@FUZZ
@given(hostile)
def test_load_json_returns_a_value_or_a_reason(text):
    value, reason = load_json(text)
    if reason is None:
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # every string in it is valid unicode
    else:
        assert value is None and isinstance(reason, str) and len(reason) < 400


@FUZZ
@given(hostile, st.sampled_from(["pairwise", "pointwise"]))
def test_parse_verdict_and_format_ok_never_raise(text, kind):
    verdict = parse_verdict(text, dimensions=("VQ", "overall"), kind=kind)
    assert isinstance(verdict, Verdict) and verdict.ok == (verdict.reason is None)
    assert verdict.reason is None or len(verdict.reason) < 1000
    assert format_ok(text) in (True, False) and format_ok(text, require_think=False) in (True, False)


@FUZZ
@given(st.lists(hostile, min_size=1, max_size=3))
def test_run_episodes_ends_every_episode_whatever_the_model_writes(turns):
    # Tools without media fail fast with ToolErrors, so every argument check and error message is exercised.
    envs = [JudgeEnv(tools=("select_frames", "crop", "calculator"))]
    script = list(turns)
    traj = run_episodes(lambda convs, imgs: [script.pop(0) if script else ""], envs,
                        [[{"role": "user", "content": "judge"}]], max_turns=len(turns))[0]
    assert traj.finish_reason in ("answer", "max_turns", "max_images")
    assert (traj.verdict is not None) == (traj.finish_reason == "answer" and traj.parse_error is None)
    for message in traj.messages:  # what the next turn renders is valid unicode and bounded per message
        text = json.dumps(message, ensure_ascii=False)
        text.encode("utf-8")
        if message["role"] == "tool":
            assert len(message["content"][-1]["text"]) <= 2000


@FUZZ
@given(st.lists(hostile, max_size=2), st.one_of(hostile, deep), st.sampled_from([PAIR, POINTWISE]))
def test_reward_functions_never_raise(turns, final, record):
    turns = [*turns, final]
    completion = [m for t in turns[:-1] for m in ({"role": "assistant", "content": t,
                                                   "tool_calls": [{"function": {"name": "crop", "arguments": t}}]},
                                                  {"role": "tool", "content": t})]
    completion.append({"role": "assistant", "content": turns[-1]})
    for name, fn in REWARD_FNS.items():
        rewards = fn([completion], [record])
        assert len(rewards) == 1 and (rewards[0] is None or isinstance(rewards[0], float)), name


# --- explicit regressions: the issue's nesting depths -----------------------------------------------------------

@pytest.mark.parametrize("n", [1_000, 100_000])
def test_deep_nesting_is_a_parse_failure_everywhere(n):
    nested = "[" * n + "]" * n
    calls, errors, _ = parse_tool_calls(f"<tool_call>{nested}</tool_call>")
    assert calls == [] and len(errors) == 1
    assert ("nests deeper than 32 levels" in errors[0]) if n == 1_000 else ("is too long" in errors[0])
    # Inside the arguments, as an object or as a JSON-encoded string.
    for arguments in (nested, json.dumps(nested)):
        calls, errors, _ = parse_tool_calls(f'<tool_call>{{"name": "crop", "arguments": {arguments}}}</tool_call>')
        assert calls == [] and len(errors) == 1
    answer = f"<think>t</think><answer>{{\"overall\": {nested}}}</answer>"
    verdict = parse_verdict(answer)
    assert not verdict.ok and verdict.reason.startswith("<answer> ")
    assert format_ok(answer) is False and format_ok(f"<think>t</think><tool_call>{nested}</tool_call>") is False
    envs = [JudgeEnv(tools=("crop",)), JudgeEnv(tools=("crop",))]
    trajs = run_episodes(lambda convs, imgs: [f"<tool_call>{nested}</tool_call>", answer][:len(convs)], envs,
                         [[{"role": "user", "content": "q"}]] * 2, max_turns=1)
    assert trajs[0].tool_failures == 1 and trajs[0].finish_reason == "max_turns"
    assert trajs[1].verdict is None and trajs[1].parse_error == verdict.reason
    completion = [{"role": "assistant", "content": answer}]
    assert REWARD_FNS["verdict_accuracy"]([completion], [PAIR]) == [-1.0]
    assert REWARD_FNS["dimension_accuracy"]([completion], [PAIR]) == [0.0]
    assert REWARD_FNS["strict_format"]([completion], [PAIR]) == [0.0]


def test_depth_check_counts_brackets_outside_strings_only():
    assert json_too_deep("[" * 33) and not json_too_deep("[" * 32)
    assert not json_too_deep('["' + "[" * 500 + '"]')  # brackets inside a string do not nest
    assert not json_too_deep('["\\"' + "[" * 40 + '"]')  # nor after an escaped quote
    assert load_json('{"a": "' + "[" * 500 + '"}') == ({"a": "[" * 500}, None)
    assert load_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))[1] == "nests deeper than 32 levels"
    assert load_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)[1] is None


def test_lone_surrogates_nul_and_huge_numbers():
    assert load_json('"\\ud800"') == (None, "holds an invalid unicode escape (a lone surrogate)")
    assert load_json('"\\ud83d\\ude00"') == ("\U0001F600", None)  # a proper pair is fine
    assert load_json('"a\\u0000b"') == ("a\x00b", None)
    assert load_json("1" * 5000)[1].startswith("is not acceptable JSON (Exceeds the limit")
    assert clean_text("ok\ud800") == "ok\ufffd" and clean_text(None) == ""
    # A 400-digit integer is a parse success but never a verdict, and never an OverflowError.
    verdict = parse_verdict("<answer>{\"overall\": " + "9" * 400 + "}</answer>", kind="pointwise")
    assert not verdict.ok and "invalid value for overall: 999" in verdict.reason and len(verdict.reason) < 300
    assert parse_verdict('<answer>{"overall": "\\ud800"}</answer>').reason.endswith("(a lone surrogate)")


def test_reasons_and_echoes_are_bounded():
    assert shown(list(range(10**6))) == "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ...]"
    assert len(shown("x" * 10**6)) <= 200 and len(shown([[[[["deep"]]]]])) < 40
    big_value = '<answer>{"overall": "' + "x" * 50_000 + '"}</answer>'
    assert len(parse_verdict(big_value).reason) < 300
    calls, errors, _ = parse_tool_calls('<tool_call>{"name": "' + "n" * 10_000 + '"}</tool_call>')
    assert calls == [] and "too long" in errors[0] and len(errors[0]) < 200
    assert message_text({"role": "assistant", "content": None, "tool_calls": [{"function": {
        "name": "crop", "arguments": {"k": float("nan")}}}, "junk"]}).count("<tool_call>") == 2
