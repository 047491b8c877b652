"""The agent loop with a scripted policy, trajectory masks, a real tiny-model episode, TRL env compatibility."""

import json

import numpy as np
import pytest
from PIL import Image
from testkit import make_pair

from mmreward.agent.env import JudgeEnv, env_factory
from mmreward.agent.generate import hf_generate_fn, render, tokenize_trajectory
from mmreward.agent.judge_scorer import JudgeScorer, pointwise_bridge
from mmreward.agent.loop import EVICTED, apply_memory_window, run_episode, run_episodes
from mmreward.data.schema import Candidate, MediaItem, parse_record, read_trajectories, write_trajectories
from mmreward.data.synthetic import decode_index, write_index_video

ANSWER = '<think>B moves better.</think><answer>{"overall": "B"}</answer>'


def call(name, **arguments):
    return "<think>look</think><tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


class Script:
    """A fake policy: returns the scripted turns of each episode in order and records what it was shown."""

    def __init__(self, *turns_per_episode):
        self.turns = [list(t) for t in turns_per_episode]
        self.seen = []

    def __call__(self, conversations, images):
        self.seen.append((conversations, [len(i) for i in images]))
        # Episodes that finished are not asked again: pop from the scripts still running, in order.
        running = [t for t in self.turns if t]
        return [t.pop(0) for t in running[:len(conversations)]]


@pytest.fixture(scope="module")
def index_video(tmp_path_factory):
    return write_index_video(tmp_path_factory.mktemp("loop") / "idx.mp4", n_frames=40, fps=10)


def _env(video, **settings):
    env = JudgeEnv(tools=("select_frames", "crop", "calculator"), workspace_frames=40, **settings)
    record = parse_record({"id": "r", "prompt": "p", "a": {"media": [{"type": "video", "path": str(video)}]},
                           "b": {"text": "x"}, "label": "A"})
    env.load(record)
    return env


def test_scripted_episode_runs_tools_and_reads_the_verdict(index_video):
    policy = Script([call("select_frames", target_frames=[1, 40]), "<think>hm</think>" + call("calculator",
                    expression="2+3*4"), ANSWER])
    traj = run_episode(policy, _env(index_video), [{"role": "user", "content": [{"type": "text", "text": "q"}]}])
    assert traj.finish_reason == "answer" and traj.verdict == {"overall": "B"}
    assert traj.tool_calls == 2 and traj.tool_failures == 0 and traj.turns == 3
    tool_msgs = [m for m in traj.messages if m["role"] == "tool"]
    assert "14" in tool_msgs[1]["content"][-1]["text"]
    # The frames the tool returned are the right ones (index encoded in the pixels): workspace 1 and 40.
    assert [decode_index(np.asarray(img)) for img in traj.images] == [0, 39]


def test_malformed_calls_unknown_tools_and_bad_arguments_become_tool_messages(index_video):
    bad_json = "<tool_call>\n{not json}\n</tool_call>"
    policy = Script([bad_json, call("teleport", to="mars"), call("select_frames", target_frames=[99]),
                     call("calculator", expression="__import__('os')"), ANSWER])
    traj = run_episode(policy, _env(index_video), [{"role": "user", "content": "q"}], max_turns=6)
    texts = [m["content"][-1]["text"] for m in traj.messages if m["role"] == "tool"]
    assert len(texts) == 4 and all(t.startswith("Error:") for t in texts)
    assert "unknown tool 'teleport'" in texts[1]
    assert "There are 40 frames numbered in range [1,40]" in texts[2]
    assert traj.tool_failures == 4 and traj.verdict == {"overall": "B"}


def test_limits_end_the_episode(index_video):
    looping = Script([call("calculator", expression="1+1")] * 10)
    traj = run_episode(looping, _env(index_video), [{"role": "user", "content": "q"}], max_turns=3)
    assert traj.finish_reason == "max_turns" and traj.turns == 3 and traj.verdict is None
    greedy = Script([call("select_frames", target_frames=list(range(1, 9)))] * 5)
    traj = run_episode(greedy, _env(index_video), [{"role": "user", "content": "q"}], max_turns=5,
                       max_images=12, memory_window=None)
    assert traj.finish_reason == "max_images" and traj.turns == 2


def test_memory_window_evicts_older_tool_images(index_video):
    policy = Script([call("select_frames", target_frames=[1, 2]), call("select_frames", target_frames=[3]),
                     call("select_frames", target_frames=[4]), ANSWER])
    prompt_image = Image.new("RGB", (56, 56), "red")
    run_episode(policy, _env(index_video), [{"role": "user", "content": [{"type": "image"},
                                                                          {"type": "text", "text": "q"}]}],
                [prompt_image], memory_window=1)
    # Turn 3 saw the prompt image plus only the latest tool result (1 frame), turn 2 the prompt image + 2 frames.
    assert [counts[0] for _, counts in policy.seen] == [1, 3, 2, 2]
    last_conversation = policy.seen[-1][0][0]
    evicted = [p["text"] for m in last_conversation if m["role"] == "tool" for p in m["content"]
               if p.get("text") == EVICTED]
    assert len(evicted) == 3  # frames of the first call (2) and the second call (1)


def test_apply_memory_window_by_hand():
    messages = [{"role": "user", "content": [{"type": "image"}]},
                {"role": "assistant", "content": "call 1"},
                {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": "t1"}]},
                {"role": "assistant", "content": "calls 2 and 3"},
                {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": "t2"}]},
                {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": "t3"}]}]
    out, images = apply_memory_window(messages, ["p", "a", "b", "c"], 1)
    # The last turn's two tool results are one set and both stay; the first turn's image is evicted.
    assert images == ["p", "b", "c"] and out[2]["content"][0] == {"type": "text", "text": EVICTED}
    assert apply_memory_window(messages, ["p", "a", "b", "c"], 0)[1] == ["p"]
    assert apply_memory_window(messages, ["p", "a", "b", "c"], None)[1] == ["p", "a", "b", "c"]


def test_loss_mask_covers_exactly_the_assistant_turns(tiny_checkpoint, index_video):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_checkpoint("qwen2_5_vl"))
    policy = Script([call("calculator", expression="6*7"), ANSWER])
    env = _env(index_video)
    traj = run_episode(policy, env, [{"role": "user", "content": "question"}])
    tokenize_trajectory(traj, processor, env.tool_schemas())
    tok = processor.tokenizer
    assert len(traj.input_ids) == len(traj.loss_mask)
    assistant = tok.decode([t for t, m in zip(traj.input_ids, traj.loss_mask) if m])
    masked = tok.decode([t for t, m in zip(traj.input_ids, traj.loss_mask) if not m])
    # Assistant text (tool call and answer) is trained on; the tool's output and the prompt are not.
    assert '"calculator"' in assistant and '{"overall": "B"}' in assistant and "42" not in assistant
    assert "42" in masked and "question" in masked and "<tool_response>" in masked
    full = render(processor, traj.messages, env.tool_schemas(), add_generation_prompt=False)
    assert tok.decode(traj.input_ids) == full


def test_trajectory_jsonl_round_trip(tmp_path, index_video):
    policy = Script([call("select_frames", target_frames=[5]), ANSWER])
    traj = run_episode(policy, _env(index_video), [{"role": "user", "content": "q"}])
    write_trajectories(tmp_path / "t.jsonl", [traj])
    back = read_trajectories(tmp_path / "t.jsonl")[0]
    assert back.messages == traj.messages and back.verdict == traj.verdict and back.tool_calls == 1
    assert decode_index(np.asarray(back.images[0])) == decode_index(np.asarray(traj.images[0]))


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_real_episode_with_the_tiny_model_and_hf_generate(tiny_checkpoint, index_video, family):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = tiny_checkpoint(family)
    model, processor = AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)
    env = _env(index_video)
    generate = hf_generate_fn(model, processor, tools=env.tool_schemas(), max_new_tokens=8)
    image = Image.new("RGB", (64, 64), "blue")
    trajs = run_episodes(generate, [env, _env(index_video)],
                         [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which?"}]}]] * 2,
                         [[image], [image]], max_turns=2)
    for traj in trajs:
        # Random weights: no tool call and no valid answer, reported as a parse failure, never a verdict.
        assert traj.turns >= 1 and traj.verdict is None and traj.parse_error


def test_env_factory_is_trl_compatible(index_video):
    from transformers.utils import get_json_schema

    cls = env_factory(tools=("select_frames", "calculator"), workspace_frames=40)
    env = cls()
    public = sorted(n for n in dir(type(env)) if not n.startswith("_") and callable(getattr(type(env), n)))
    assert public == ["calculator", "reset", "select_frames"]
    schema = get_json_schema(env.select_frames)
    assert schema["function"]["name"] == "select_frames" and "target_frames" in schema["function"]["parameters"][
        "properties"]
    record = {"id": "r", "prompt": "p", "a": {"media": [{"type": "video", "path": str(index_video)}]},
              "b": {"text": "x"}, "label": "A"}
    assert env.reset(record=json.dumps(record), prompt=[{"role": "user", "content": "ignored by reset"}]) is None
    blocks = env.select_frames(target_frames=[40])
    assert blocks[0]["type"] == "image" and decode_index(np.asarray(blocks[0]["image"])) == 39
    assert blocks[-1]["type"] == "text" and env.calculator(expression="2+3*4")[-1]["text"] == "14"


def test_judge_scorer_with_a_scripted_policy_and_the_bridge(tiny_checkpoint, scoring_media):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_checkpoint("qwen2_5_vl"))
    from mmreward.agent.judge_scorer import JudgeConfig

    video_answer = '<think>.</think><answer>{"VQ": "A", "MQ": "tie", "TA": "B", "overall": "B"}</answer>'
    answers = {"pairwise": ANSWER}

    def policy(conversations, images):
        # The video template asks for every dimension; the image template for overall only.
        return [video_answer if "MQ (motion quality)" in json.dumps(c) else answers["pairwise"]
                for c in conversations]

    judge = JudgeScorer(None, processor, JudgeConfig(backbone="x", tools=["select_frames"], initial_frames=2),
                        generate_fn=policy)
    records = [parse_record(make_pair("v", "v0.mp4", "v1.mp4"), base_dir=scoring_media),
               parse_record(make_pair("i", "i0.png", "i1.png"), base_dir=scoring_media)]
    messages, images, name = judge.conversation(records[0])
    assert name == "pairwise_video" and len(images) == 4  # 2 first-look frames per video
    assert "select_frames video=2" in json.dumps(messages)
    results = judge.score(records, progress=False)
    assert [(r.score_a, r.score_b, r.preferred) for r in results] == [(0.0, 1.0, "B")] * 2
    assert results[0].scores == {"VQ": [1.0, 0.0], "MQ": [0.5, 0.5], "TA": [0.0, 1.0], "overall": [0.0, 1.0]}
    answers["pairwise"] = "Thought process:"
    assert judge.score(records[1:], progress=False)[0].error.startswith("parse failure")
    # Bridge: the judge always prefers the second shown candidate -> swap-averaged win rate 0.5 for everyone.
    answers["pairwise"] = ANSWER
    cand = [Candidate(media=[MediaItem(type="image", path=str(scoring_media / "i0.png"))])]
    ref = Candidate(media=[MediaItem(type="image", path=str(scoring_media / "i1.png"))])
    assert pointwise_bridge(judge, "a prompt", cand, ref) == [0.5]
    assert pointwise_bridge(judge, "a prompt", cand, ref, swap=False) == [0.0]


def test_a_tiny_model_taught_one_trace_runs_a_real_tool_using_episode(tiny_checkpoint, index_video):
    """Fit the tiny model to one scripted trace (loss on assistant tokens only), then let *it* drive the loop:
    its own generated <tool_call> is parsed, select_frames runs, and it ends with a valid verdict."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch.manual_seed(0)
    path = tiny_checkpoint("qwen2_5_vl")
    model, processor = AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)
    env = JudgeEnv(tools=("select_frames",), workspace_frames=40)
    record = parse_record({"id": "r", "prompt": "p", "a": {"media": [{"type": "video", "path": str(index_video)}]},
                           "b": {"text": "x"}, "label": "A"})
    env.load(record)
    messages = [{"role": "user", "content": "Judge video 1."}]
    tool_turn = '<tool_call>\n{"name": "select_frames", "arguments": {"target_frames": [1, 40]}}\n</tool_call>'
    script = iter([tool_turn, '<answer>{"overall": "A"}</answer>'])
    trace = run_episode(lambda convs, imgs: [next(script)], env, messages)
    tokenize_trajectory(trace, processor, env.tool_schemas())
    text = render(processor, trace.messages, env.tool_schemas(), add_generation_prompt=False)
    batch = processor(text=[text], images=trace.images, return_tensors="pt")
    assert batch["input_ids"][0].tolist() == trace.input_ids
    labels = batch["input_ids"].masked_fill(torch.tensor([trace.loss_mask]) == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1
    env.load(record)
    generate = hf_generate_fn(model.eval(), processor, tools=env.tool_schemas(), max_new_tokens=40)
    episode = run_episode(generate, env, messages, max_turns=3)
    assert episode.tool_calls == 1 and episode.tool_failures == 0
    assert [decode_index(np.asarray(img)) for img in episode.images] == [0, 39]
    assert episode.finish_reason == "answer" and episode.verdict == {"overall": "A"}
