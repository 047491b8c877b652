"""The tool-use prompt is built from the enabled tools; one default tool list."""

import dataclasses
from types import SimpleNamespace

import pytest

from mmreward.agent import tools as tools_module
from mmreward.agent.env import JudgeEnv, env_factory
from mmreward.agent.judge_prompt import build_conversation
from mmreward.agent.judge_scorer import JudgeConfig
from mmreward.agent.tools import DEFAULT_TOOLS, TOOLS, ToolError, tool_hint, tool_use_prompt
from mmreward.data.schema import Candidate, PreferencePair

DEFAULT_PARAGRAPH = (
    "What you are shown may be a few frames at reduced resolution. Before answering, you can look again: call "
    "select_frames to see other frames of a video, or crop to zoom into a region of an image or frame. Call tools "
    "after </think> (one <tool_call> block per call) whenever a detail matters for your verdict, then continue "
    "reasoning with what they return. Give the <answer> only when you have seen enough.")


def test_default_tools_give_the_same_paragraph_as_before():
    assert DEFAULT_TOOLS == ("select_frames", "crop")
    assert tool_use_prompt(DEFAULT_TOOLS) == DEFAULT_PARAGRAPH


def test_the_paragraph_names_only_the_enabled_tools():
    text = tool_use_prompt(["crop"])
    assert "call crop to zoom into a region of an image or frame. Call tools" in text
    assert "select_frames" not in text
    text = tool_use_prompt(["calculator", "search", "crop"])
    assert ("call calculator to check arithmetic, search to check facts in the reference collection, or crop to "
            "zoom into a region of an image or frame.") in text
    with pytest.raises(ValueError, match="at least one tool"):
        tool_use_prompt([])
    with pytest.raises(ToolError, match="Unknown tool 'zoom'"):
        tool_use_prompt(["zoom"])


def test_a_new_tool_without_a_hint_is_described_by_its_docstring(monkeypatch):
    def measure(length: float) -> str:
        """Measure a length in pixels.

        Args:
            length: the length.
        """
        return str(length)

    monkeypatch.setitem(TOOLS, "measure", measure)
    assert tool_hint("measure") == "measure a length in pixels"
    assert "call measure to measure a length in pixels." in tools_module.tool_use_prompt(["measure"])


def test_judge_config_and_env_default_to_the_one_list():
    assert JudgeConfig().tools == list(DEFAULT_TOOLS)
    assert JudgeEnv().tools == DEFAULT_TOOLS
    assert [n for n in vars(env_factory()) if not n.startswith("_") and n in TOOLS] == list(DEFAULT_TOOLS)


def test_the_judge_prompt_follows_the_config_tools():
    pair = PreferencePair(id="p", prompt="a red circle", a=Candidate(text="x"), b=Candidate(text="y"), label="A")
    config = SimpleNamespace(**{f.name: f.default for f in dataclasses.fields(JudgeConfig)
                                if f.default is not dataclasses.MISSING})
    config.tools = ["calculator"]
    messages, _ = build_conversation(pair, "pairwise_response", config)
    text = messages[-1]["content"][-1]["text"]
    assert text.endswith(tool_use_prompt(["calculator"])) and "select_frames" not in text and "crop" not in text
    config.tools = []
    messages, _ = build_conversation(pair, "pairwise_response", config)
    assert "<tool_call>" not in messages[-1]["content"][-1]["text"]


def test_brief_style_gives_the_one_line_tool_paragraph_and_the_brief_template_parses():
    from mmreward.judge import parse_verdict
    from mmreward.prompts import JUDGE_DIMENSIONS

    assert tool_use_prompt(DEFAULT_TOOLS, brief=True) == (
        "To look closer, call select_frames to see other frames of a video, or crop to zoom into a region of an "
        "image or frame, after </think>.")
    pair = PreferencePair(id="p", prompt="a red circle", a=Candidate(text="x"), b=Candidate(text="y"), label="A")
    config = SimpleNamespace(**{f.name: f.default for f in dataclasses.fields(JudgeConfig)
                                if f.default is not dataclasses.MISSING})
    config.tools, config.tool_schema = ["crop"], "brief"
    text = build_conversation(pair, "pairwise_brief", config)[0][-1]["content"][-1]["text"]
    assert text == ('Prompt: "a red circle"\nWhich matches the prompt better, A (first) or B (second)? Reason inside '
                    '<think></think>, then answer <answer>{"overall": "A"}</answer> or <answer>{"overall": "B"}'
                    '</answer>.\n\nTo look closer, call crop to zoom into a region of an image or frame, after '
                    '</think>.')
    assert JUDGE_DIMENSIONS["pairwise_brief"] == ("overall",)
    verdict = parse_verdict('<think>B at t=1.5s: red.</think><answer>{"overall": "B"}</answer>',
                            dimensions=JUDGE_DIMENSIONS["pairwise_brief"], kind="pairwise")
    assert verdict.ok and verdict.verdicts == {"overall": "B"}
