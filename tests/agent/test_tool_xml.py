"""Qwen3.5's XML tool calls: parsed, rendered exactly as the shipped template renders them, and never a crash.

`<tool_call>\n<function=NAME>\n<parameter=KEY>\nVALUE\n</parameter>\n</function>\n</tool_call>`: the template writes
objects and arrays as JSON and scalars as text, so values are read back as JSON where they parse, except string
parameters of known tools (the calculator's "2+3" and "5" stay text).
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mmreward.agent.loop import run_episodes
from mmreward.agent.protocol import (
    ToolCall,
    chat_template_for,
    format_tool_calls,
    generation_prefill,
    parse_tool_calls,
    render_tool_call,
)
from mmreward.judge import format_ok
from mmreward.models.families import FAMILIES
from mmreward.models.tiny import shipped_chat_template
from mmreward.train.reward_fns import message_text, strict_format

CROP = ("<tool_call>\n<function=crop>\n<parameter=box>\n[0.1, 0.2, 0.5, 0.6]\n</parameter>\n</function>\n"
        "</tool_call>")
FRAMES = ("<tool_call>\n<function=select_frames>\n<parameter=target_frames>\n[1, 5, 9]\n</parameter>\n"
          "</function>\n</tool_call>")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _render(template_name, messages, **kwargs):
    """The shipped template rendered by plain jinja (as transformers does: tojson without key sorting)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False)

    def raise_exception(message):
        raise ValueError(message)

    template = env.from_string(shipped_chat_template(template_name))
    return template.render(messages=messages, raise_exception=raise_exception, **kwargs)


def test_a_call_is_parsed_with_json_values_and_cut_out_of_the_content():
    calls, errors, content = parse_tool_calls(f"looking closer\n</think>\n\n{CROP}\n{FRAMES}", "xml")
    assert errors == []
    assert [(c.name, c.arguments) for c in calls] == [("crop", {"box": [0.1, 0.2, 0.5, 0.6]}),
                                                      ("select_frames", {"target_frames": [1, 5, 9]})]
    assert content == "looking closer\n</think>"
    assert calls[0].raw == CROP


def test_values_are_text_unless_they_are_json_and_string_parameters_stay_text():
    body = ("<tool_call>\n<function=calculator>\n<parameter=expression>\n5\n</parameter>\n</function>\n</tool_call>"
            "<tool_call>\n<function=other>\n<parameter=n>\n5\n</parameter>\n<parameter=note>\nhello world\n"
            "</parameter>\n<parameter=flag>\ntrue\n</parameter>\n<parameter=multi>\nline 1\nline 2\n</parameter>\n"
            "</function>\n</tool_call>")
    calls, errors, _ = parse_tool_calls(body, "xml")
    assert errors == []
    # The calculator declares `expression: str`: "5" is the expression "5", not the number 5.
    assert calls[0].arguments == {"expression": "5"}
    assert calls[1].arguments == {"n": 5, "note": "hello world", "flag": True, "multi": "line 1\nline 2"}


def test_a_call_without_parameters_and_autodetection_of_the_format():
    calls, errors, _ = parse_tool_calls("<tool_call>\n<function=search>\n</function>\n</tool_call>")
    assert errors == [] and calls == [ToolCall("search", {}, calls[0].raw)]
    # Without a format each block is read in its own: one Hermes and one XML call in the same turn.
    hermes = '<tool_call>\n{"name": "crop", "arguments": {"box": [0, 0, 1, 1]}}\n</tool_call>'
    calls, errors, _ = parse_tool_calls(f"{hermes}\n{FRAMES}")
    assert errors == [] and [c.name for c in calls] == ["crop", "select_frames"]
    # With the family's format a JSON body is an error whose hint shows the XML format.
    calls, errors, _ = parse_tool_calls(hermes, "xml")
    assert calls == [] and errors[0].startswith("the tool call must start with <function=TOOL_NAME>.")
    assert "<parameter=NAME>" in errors[0]


@pytest.mark.parametrize(("body", "message"), [
    ("<function=crop>\n<parameter=box>\n[1]\n</parameter>\n", "the call of 'crop' is not closed by </function>"),
    ("<function=>\n</function>", "the tool call has an empty function name"),
    ("<function=crop>\n<parameter=box>\n[1]\n</function>", "<parameter='box'> is not closed by </parameter>"),
    ("<function=crop>\nbox=[1]\n</function>", "unexpected text 'box=[1]\\n' in the call of 'crop'"),
    ("<function=crop>\n<parameter=box>\n1\n</parameter>\n<parameter=box>\n2\n</parameter>\n</function>",
     "a parameter name is repeated in the call of 'crop'"),
    ("<function=crop>\n<parameter=>\n1\n</parameter>\n</function>", "a parameter name is empty"),
    (f"<function={'f' * 65}>\n</function>", "is too long (at most 64 characters)"),
    ("<function=crop\n</function>", "the tool call must start with <function=TOOL_NAME>"),
])
def test_malformed_calls_are_errors_that_keep_their_text(body, message):
    text = f"<tool_call>\n{body}\n</tool_call>"
    calls, errors, content = parse_tool_calls(text, "xml")
    assert calls == [] and len(errors) == 1 and message in errors[0], errors
    assert content == text  # the history shows the model what the error refers to


@pytest.mark.parametrize("template", ["qwen3_5_think.jinja", "qwen3_5_nothink.jinja"])
def test_render_tool_call_is_what_the_shipped_template_renders(template):
    arguments = {"box": [0.1, 0.2, 0.5, 0.6], "note": "a b", "n": 3, "x": 0.5, "nested": {"k": [1, "é"]}}
    calls = [ToolCall("crop", arguments), ToolCall("select_frames", {"target_frames": [1, 5]})]
    messages = [{"role": "user", "content": "judge"},
                {"role": "assistant", "content": "", "tool_calls": format_tool_calls(calls)}]
    rendered = _render(template, messages)
    ours = "\n".join(render_tool_call(c.name, c.arguments, "xml") for c in calls)
    assert rendered.endswith(ours + "<|im_end|>\n"), rendered
    # And it parses back to the same calls.
    parsed, errors, _ = parse_tool_calls(ours, "xml")
    assert errors == [] and [(c.name, c.arguments) for c in parsed] == [(c.name, c.arguments) for c in calls]


def test_hermes_rendering_is_unchanged():
    assert render_tool_call("crop", {"box": [1, 2]}) == \
        '<tool_call>\n{"name": "crop", "arguments": {"box": [1, 2]}}\n</tool_call>'
    deep = []
    for _ in range(2000):
        deep = [deep]
    assert render_tool_call("crop", {"box": deep}) == \
        "<tool_call>\n<arguments that are not representable as JSON>\n</tool_call>"


def test_qwen3_5_templates_render_tools_themselves_and_prefill_the_reasoning(tiny_checkpoint):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_checkpoint("qwen3_5"))
    template = shipped_chat_template(FAMILIES["qwen3_5"].chat_template)
    assert chat_template_for(processor, tools_in_use=True) == template  # no replacement needed
    assert generation_prefill(processor) == "<think>\n"
    processor.chat_template = processor.tokenizer.chat_template = shipped_chat_template("qwen3_5_nothink.jinja")
    assert generation_prefill(processor) == "<think>\n\n</think>\n\n"


def test_format_checks_and_rewards_read_xml_turns():
    turn = f"<think>\nthe left edge is unclear\n</think>\n\n{CROP}"
    assert format_ok(turn)
    answer = '<think>\nA is sharper\n</think>\n\n<answer>{"overall": "A"}</answer>'
    calls, _, content = parse_tool_calls(turn, "xml")
    completion = [{"role": "assistant", "content": content, "tool_calls": format_tool_calls(calls)},
                  {"role": "tool", "content": "Here is the crop."}, {"role": "assistant", "content": answer}]
    # Rebuilt in the family's format (one line break before the call, as our Hermes rebuild does).
    assert message_text(completion[0], "xml") == f"<think>\nthe left edge is unclear\n</think>\n{CROP}"
    assert format_ok(message_text(completion[0], "xml"))
    assert strict_format([completion], family=FAMILIES["qwen3_5"]) == [1.0]


def test_an_episode_runs_an_xml_call():
    class Env:
        def __init__(self):
            self.calls = []

        def call(self, name, arguments):
            from mmreward.agent.tools import ToolResult

            self.calls.append((name, arguments))
            return ToolResult("frames 1, 5, 9")

    env = Env()
    script = [f"<think>\nlook again\n</think>\n\n{FRAMES}", '<think>\nok\n</think>\n\n<answer>{"overall": "B"}</answer>']
    traj = run_episodes(lambda convs, imgs: [script.pop(0)], [env], [[{"role": "user", "content": "judge"}]])[0]
    assert env.calls == [("select_frames", {"target_frames": [1, 5, 9]})]
    assert traj.finish_reason == "answer" and traj.verdict == {"overall": "B"}


# --- fuzz: any string, never an exception ----------------------------------------------------------------------

any_char = st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
                     st.sampled_from("\x00<>/=\n[]{}\""))
PIECES = ["<tool_call>", "</tool_call>", "<function=", "<function=crop>", "</function>", "<parameter=",
          "<parameter=box>", "<parameter=expression>", "</parameter>", "\n", ">", "=", "[0.1, 0.2]", "[" * 40,
          "]" * 40, '{"a": ', "}", "9" * 5000, "\\ud800", "<think>", "</think>", " ", "x" * 70]
xml_soup = st.lists(st.one_of(st.sampled_from(PIECES), st.text(any_char, max_size=8)), max_size=40).map("".join)


@FUZZ
@given(st.one_of(xml_soup, st.text(any_char, max_size=200)), st.sampled_from(["xml", None, "hermes"]))
def test_parse_tool_calls_never_raises_on_xml_soup(text, tool_format):
    calls, errors, content = parse_tool_calls(text, tool_format)
    assert all(isinstance(c, ToolCall) and isinstance(c.arguments, dict) for c in calls)
    assert all(isinstance(e, str) and len(e) < 2000 for e in errors) and isinstance(content, str)


json_like = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=10)),
                         lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                 st.dictionaries(st.text(max_size=5), inner, max_size=4)),
                         max_leaves=12)
names = st.text(st.characters(blacklist_characters="<>\n\r\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029 ",
                              blacklist_categories=("Cs", "Zs")), min_size=1, max_size=20)


@FUZZ
@given(names, st.dictionaries(names, st.one_of(st.lists(json_like, max_size=3),
                                               st.dictionaries(names, json_like, max_size=3),
                                               st.integers(-10**6, 10**6)), max_size=4))
def test_rendered_calls_parse_back_to_the_same_call(name, arguments):
    calls, errors, _ = parse_tool_calls(render_tool_call(name, arguments, "xml"), "xml")
    assert errors == [] and len(calls) == 1
    assert calls[0].name == name and calls[0].arguments == arguments


@FUZZ
@given(st.lists(xml_soup, min_size=1, max_size=3))
def test_episodes_and_rewards_never_raise_on_xml_soup(turns):
    from mmreward.agent.env import JudgeEnv
    from mmreward.train.reward_fns import REWARD_FNS

    script = list(turns)
    traj = run_episodes(lambda convs, imgs: [script.pop(0) if script else ""],
                        [JudgeEnv(tools=("select_frames", "crop", "calculator"))],
                        [[{"role": "user", "content": "judge"}]], max_turns=len(turns))[0]
    assert traj.finish_reason in ("answer", "max_turns", "max_images")
    record = json.dumps({"id": "p", "prompt": "which?", "a": {"text": "x"}, "b": {"text": "y"}, "label": "A"})
    for name, fn in REWARD_FNS.items():
        rewards = fn([traj.messages[1:]], [record], family=FAMILIES["qwen3_5"])
        assert len(rewards) == 1 and (rewards[0] is None or isinstance(rewards[0], float)), name
