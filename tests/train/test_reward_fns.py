"""GRPO rewards on hand-built completions, with hand-computed values (and the master-key exploits)."""

import json
from functools import partial

import pytest

from mmreward.judge import MASTER_KEYS
from mmreward.train.reward_fns import (
    REWARD_FNS,
    assistant_turns,
    dimension_accuracy,
    message_text,
    strict_format,
    tool_call_count,
    tool_call_validity,
    tool_failure_count,
    verdict_accuracy,
    vrthinker_tool_bonus,
)

VIDEO_PAIR = json.dumps({"id": "v", "prompt": "p", "a": {"text": "x"}, "b": {"text": "y"}, "label": "A",
                         "dimensions": {"VQ": "B", "MQ": "A"}})
IMAGE_PAIR = json.dumps({"id": "i", "prompt": "p", "a": {"text": "x"}, "b": {"text": "y"}, "label": "B"})
POINTWISE = json.dumps({"id": "s", "prompt": "p", "response": "r", "scores": {"overall": 7, "VQ": 3}})
VIDEO_ANSWER = '{"VQ": "B", "MQ": "B", "TA": "A", "overall": "A"}'


def answer(verdict: str, think: str = "compare") -> dict:
    """A final turn as TRL parses it: reasoning moved to `reasoning_content`."""
    return {"role": "assistant", "reasoning_content": think, "content": f"<answer>{verdict}</answer>"}


def call(name: str = "select_frames", think: str = "look closer") -> dict:
    return {"role": "assistant", "reasoning_content": think, "content": "",
            "tool_calls": [{"type": "function", "function": {"name": name, "arguments": {"target_frames": [1]}}}]}


def result(text: str = "Here are the selected frames.") -> dict:
    return {"role": "tool", "name": "select_frames", "content": [{"type": "image"}, {"type": "text", "text": text}]}


def trl_error() -> dict:
    return {"role": "tool", "name": "select_frames", "content": str({"error": "frame 200 is out of range"})}


def test_message_text_rebuilds_trl_and_loop_turns():
    assert message_text(answer('{"overall": "A"}')) == '<think>\ncompare\n</think>\n<answer>{"overall": "A"}</answer>'
    rebuilt = message_text(call())
    assert rebuilt.startswith("<think>\nlook closer\n</think>\n<tool_call>\n")
    assert json.loads(rebuilt.split("<tool_call>\n")[1].split("\n</tool_call>")[0]) == {
        "name": "select_frames", "arguments": {"target_frames": [1]}}
    # Our loop keeps <think> in content.
    loop_turn = {"role": "assistant", "content": "<think>x</think>", "tool_calls": call()["tool_calls"]}
    assert message_text(loop_turn).startswith("<think>x</think>\n<tool_call>")


def test_tool_counts_and_failures():
    episode = [call(), result(), call(), trl_error(), call(), {"role": "tool", "content": "Error: bad index"},
               answer('{"overall": "A"}')]
    assert tool_call_count(episode) == 3
    assert tool_failure_count(episode) == 2
    # 1 of 3 calls succeeded; no calls -> the `no_calls` value.
    assert tool_call_validity([episode, [answer("{}")]]) == pytest.approx([1 / 3, 0.0])
    assert tool_call_validity([[answer("{}")]], no_calls=1.0) == [1.0]
    # A tool whose text merely mentions an error is not a failure.
    assert tool_failure_count([{"role": "tool", "content": "No error: frames 1-8"}]) == 0


def test_verdict_accuracy_vrthinker_values_and_partial():
    completions = [[answer('{"overall": "B"}')], [answer('{"overall": "A"}')], [answer("not json")],
                   [call(), result()]]  # the last ends on a tool result: no verdict
    records = [IMAGE_PAIR] * 4
    template = ["pairwise_image"] * 4
    assert verdict_accuracy(completions, records, template=template) == [1.0, 0.0, -1.0, -1.0]
    unified = partial(verdict_accuracy, unparsable=0.0)
    assert unified(completions, record=records, template=template) == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("key", MASTER_KEYS)
def test_master_keys_are_unparsable_and_badly_formatted(key):
    completion = [{"role": "assistant", "content": key}]
    assert verdict_accuracy([completion], [IMAGE_PAIR]) == [-1.0]
    assert dimension_accuracy([completion], [VIDEO_PAIR]) == [0.0]
    assert strict_format([completion]) == [0.0]


def test_verdict_accuracy_needs_every_template_dimension():
    # The video template asks for VQ, MQ, TA, overall; an answer with only "overall" does not parse.
    only_overall = [[answer('{"overall": "A"}')]]
    assert verdict_accuracy(only_overall, [VIDEO_PAIR], template=["pairwise_video"]) == [-1.0]
    # Without a template column the labelled dimensions are required (overall, VQ, MQ).
    assert verdict_accuracy(only_overall, [VIDEO_PAIR]) == [-1.0]
    assert verdict_accuracy([[answer(VIDEO_ANSWER)]], [VIDEO_PAIR], template=["pairwise_video"]) == [1.0]


def test_dimension_accuracy_counts_labelled_dimensions_only():
    # Labels: overall A, VQ B, MQ A (TA unlabelled). Answer: VQ B, MQ B, overall A -> 2 of 3.
    got = dimension_accuracy([[answer(VIDEO_ANSWER)]], [VIDEO_PAIR], template=["pairwise_video"])
    assert got == pytest.approx([2 / 3])
    # The image template only asks for overall, so the video dimensions do not count there.
    assert dimension_accuracy([[answer('{"overall": "A"}')]], [VIDEO_PAIR], template=["pairwise_image"]) == [1.0]
    assert dimension_accuracy([[answer("x")]], [VIDEO_PAIR], unparsable=-1.0) == [-1.0]


def test_pointwise_scores_within_tolerance():
    # Labels overall 7, VQ 3; TA is asked by the template but unlabelled.
    turn = [[answer('{"TA": 9, "VQ": 4, "overall": 7.4}')]]
    assert verdict_accuracy(turn, [POINTWISE], template=["pointwise_image"]) == [1.0]
    assert dimension_accuracy(turn, [POINTWISE], template=["pointwise_image"]) == [0.5]   # |4 - 3| > 0.5
    assert dimension_accuracy(turn, [POINTWISE], template=["pointwise_image"], score_tolerance=1.0) == [1.0]
    unlabelled = json.dumps({"id": "u", "prompt": "p", "response": "r"})
    assert verdict_accuracy(turn, [unlabelled]) == [None]


def test_strict_format_every_turn():
    good = [call(), result(), answer('{"overall": "A"}')]
    chatty_call = [{**call(), "content": "let me look"}, result(), answer('{"overall": "A"}')]
    no_think = [{"role": "assistant", "content": '<answer>{"overall": "A"}</answer>'}]
    empty_answer = [answer("{}")]
    ends_on_call = [call(), result()]
    text_after = [{"role": "assistant", "content": '<think>a</think><answer>{"overall": "A"}</answer> ok'}]
    got = strict_format([good, chatty_call, no_think, empty_answer, ends_on_call, text_after])
    assert got == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_raw_turns_from_ids_see_what_the_parser_hides(tiny_checkpoint):
    """TRL's parser drops text before <think> and reorders blocks; with a tokenizer the raw text is judged."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint("qwen3_vl"))
    raw = ('junk <think>x</think><tool_call>\n{"name": "crop", "arguments": {}}\n</tool_call><|im_end|>\n'
           "<|im_start|>user\n<tool_response>\nok\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
           '<think>y</think><answer>{"overall": "B"}</answer><|im_end|>')
    ids = tok(raw, add_special_tokens=False)["input_ids"]
    parsed = [{**call("crop", "x")}, result("ok"), answer('{"overall": "B"}', "y")]  # what TRL hands over
    turns = assistant_turns(parsed, ids, tok)
    assert turns == ['junk <think>x</think><tool_call>\n{"name": "crop", "arguments": {}}\n</tool_call>',
                     '<think>y</think><answer>{"overall": "B"}</answer>']
    assert strict_format([parsed]) == [1.0]                                 # rebuilt: looks fine
    assert strict_format([parsed], completion_ids=[ids], tokenizer=tok) == [0.0]   # raw: the junk is seen
    assert verdict_accuracy([parsed], [IMAGE_PAIR], completion_ids=[ids], tokenizer=tok) == [1.0]
    # An answer written before the reasoning is no verdict in the raw text.
    hidden = tok('<answer>{"overall": "B"}</answer><think>x</think><|im_end|>', add_special_tokens=False)
    assert verdict_accuracy([[answer('{"overall": "B"}', "x")]], [IMAGE_PAIR],
                            completion_ids=[hidden["input_ids"]], tokenizer=tok) == [-1.0]


def test_vrthinker_tool_bonus_and_decay():
    episodes = [[call(), result()] * n + [answer("{}")] for n in range(6)]
    assert vrthinker_tool_bonus(episodes) == [-1.0, -1.0, 0.5, 1.0, 1.5, 1.5]

    class State:
        global_step = 30

    assert vrthinker_tool_bonus(episodes[2:4], trainer_state=State()) == [0.5, 1.0]    # no decay by default
    assert vrthinker_tool_bonus(episodes[2:4], trainer_state=State(), decay_after=30) == pytest.approx([0.1, 0.2])
    assert vrthinker_tool_bonus(episodes[2:4], trainer_state=State(), decay_after=31) == [0.5, 1.0]


def test_registry_names_match_functions():
    assert {name: fn.__name__ for name, fn in REWARD_FNS.items()} == {name: name for name in REWARD_FNS}
