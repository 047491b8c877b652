"""A tool is one registry entry: a toy tool in `TOOLS` reaches the judge's prompt and schemas, the agent loop, TRL's
environment, the SFT / GRPO configs and the `mmreward train` command, with no other file changed."""

import json
import re

import pytest

from mmreward.agent.env import JudgeEnv, env_factory
from mmreward.agent.judge_prompt import build_conversation
from mmreward.agent.judge_scorer import JudgeConfig, JudgeScorer
from mmreward.agent.loop import run_episode
from mmreward.agent.tools import TOOLS, tool_schemas, tool_use_prompt
from mmreward.cli import main
from mmreward.config import load_config
from mmreward.data.schema import Candidate, PreferencePair
from mmreward.errors import ConfigError

ANSWER = '<think>A is right.</think><answer>{"overall": "A"}</answer>'


def count_letters(text: str) -> str:
    """Count the letters in a text.

    Args:
        text: the text to count.
    """
    return f"{sum(ch.isalpha() for ch in text)} letters"


@pytest.fixture
def toy_tool(monkeypatch):
    monkeypatch.setitem(TOOLS, "count_letters", count_letters)


def _call(name, **arguments):
    return "<think>count</think><tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def test_the_prompt_and_the_schemas_describe_the_new_tool(toy_tool):
    [schema] = tool_schemas(["count_letters"])
    assert schema["function"]["name"] == "count_letters"
    assert schema["function"]["parameters"]["properties"]["text"]["description"] == "the text to count."
    pair = PreferencePair(id="p", prompt="a word", a=Candidate(text="ab"), b=Candidate(text="abc"), label="A")
    messages, _ = build_conversation(pair, "pairwise_response", JudgeConfig(tools=["count_letters"]))
    text = messages[-1]["content"][-1]["text"]
    assert text.endswith(tool_use_prompt(["count_letters"]))
    assert "call count_letters to count the letters in a text." in text and "select_frames" not in text


def test_the_agent_loop_calls_the_new_tool(toy_tool):
    env = JudgeEnv(tools=("count_letters",))
    env.reset(id="p", prompt="a word", a={"text": "ab"}, b={"text": "abc"}, label="A")
    calls = iter([_call("count_letters", text="a b,c!"), ANSWER])
    traj = run_episode(lambda convs, images: [next(calls) for _ in convs], env,
                       [{"role": "user", "content": [{"type": "text", "text": "q"}]}])
    assert traj.finish_reason == "answer" and traj.tool_calls == 1 and traj.tool_failures == 0
    [reply] = [m for m in traj.messages if m["role"] == "tool"]
    assert reply["content"][-1]["text"] == "3 letters"
    # TRL's environment class exposes exactly the enabled tools as public methods.
    trl_env = env_factory(tools=("count_letters",))()
    assert [n for n in dir(trl_env) if not n.startswith("_")] == ["count_letters", "reset"]


def test_the_trainer_configs_accept_the_new_tool(toy_tool, tmp_path):
    from mmreward.train.grpo import JudgeGRPOConfig
    from mmreward.train.sft import SFTConfig

    flags = ["--model", "M", "--train_data", "t.jsonl", "--output_dir", str(tmp_path), "--use_cpu", "true"]
    sft = load_config(SFTConfig, None, [*flags, "--tools", "[count_letters, crop]"])
    assert sft.tools == ["count_letters", "crop"] and sft.judge_config().tools == ["count_letters", "crop"]
    grpo = load_config(JudgeGRPOConfig, None, [*flags, "--tools", "[count_letters]"])
    assert grpo.tools == ["count_letters"]


def test_mmreward_train_names_the_new_tool_among_the_available_ones(toy_tool, capsys):
    assert main(["train", "sft", "--model", "M", "--train_data", "t.jsonl", "--tools", "[count_lettres]"]) == 2
    err = capsys.readouterr().err
    available = ", ".join(TOOLS)
    assert available.endswith(", count_letters")
    assert re.search(re.escape(f"unknown tool(s) count_lettres; available: {available}") + "$", err.strip()), err
    with pytest.raises(ConfigError, match=re.escape(f"unknown tool(s) nope; available: {available}")):
        from mmreward.train.sft import SFTConfig

        load_config(SFTConfig, None, ["--model", "M", "--train_data", "t.jsonl", "--tools", "[nope]"])


def test_brief_schemas_keep_every_parameter_in_fewer_words(toy_tool):
    from mmreward.agent.tools import BRIEF_DOCS, check_tool_schema

    full, brief = tool_schemas(None), tool_schemas(None, brief=True)
    for f, b in zip(full, brief):
        name = f["function"]["name"]
        assert b["function"]["name"] == name
        assert b["function"]["parameters"] == {**f["function"]["parameters"], "properties": {
            k: {**v, "description": b["function"]["parameters"]["properties"][k]["description"]}
            for k, v in f["function"]["parameters"]["properties"].items()}}
        if name in BRIEF_DOCS:
            assert len(json.dumps(b)) < 0.7 * len(json.dumps(f))
        else:  # a tool without a brief docstring (the toy) keeps its own
            assert b == f
    # TRL builds its schemas from the environment's method docstrings: the brief environment shows the brief ones.
    from transformers.utils import get_json_schema

    env = env_factory(tools=("select_frames", "crop"), brief=True)
    assert get_json_schema(env.crop) == {**tool_schemas(["crop"], brief=True)[0]}
    with pytest.raises(ConfigError, match="tool_schema must be one of full, brief, got 'short'"):
        check_tool_schema("short")
    with pytest.raises(ConfigError, match="tool_schema"):
        JudgeScorer(None, None, JudgeConfig(tool_schema="short"))


def test_the_judge_renders_its_tools_in_the_order_trl_shows_them():
    """TRL's GRPO lists an environment's tool methods with inspect.getmembers (by name); SFT and inference must
    render the same system turn, whatever order the config names the tools in."""
    import inspect

    env_cls = env_factory(tools=("select_frames", "crop"))
    trl_order = [name for name, _ in inspect.getmembers(env_cls, predicate=inspect.isfunction)
                 if not name.startswith("_") and name != "reset"]
    ours = [s["function"]["name"] for s in JudgeEnv(tools=("select_frames", "crop")).tool_schemas()]
    assert trl_order == ours == ["crop", "select_frames"]
    swapped = JudgeEnv(tools=("crop", "select_frames")).tool_schemas()
    assert swapped == JudgeEnv(tools=("select_frames", "crop")).tool_schemas()
