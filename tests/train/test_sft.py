"""Cold-start SFT: synthetic tool-use traces, the assistant-only labels, TRL training smoke runs, and a tiny judge
taught one trace that then runs a real tool-using episode through `JudgeScorer.run`."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from mmreward.agent.judge_scorer import JudgeConfig, JudgeScorer
from mmreward.config import load_config
from mmreward.data.recipe import build_recipe, load_split
from mmreward.data.schema import PreferencePair, write_jsonl, write_trajectories
from mmreward.data.synthetic_prefs import demo_recipe
from mmreward.judge import parse_verdict
from mmreward.prompts import JUDGE_DIMENSIONS
from mmreward.scoring import load_scorer
from mmreward.train.sft import SFTConfig, TrajectoryCollator, tokenize_all, train
from mmreward.train.traces import synthetic_traces, verdict_for

JUDGE = JudgeConfig(backbone="x", initial_frames=2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tiny model trains as fast on one thread as on two, and a busy CPU (other test runs) makes a second
    thread oversubscribe: the 100-step test went from 14 s to 110 s. One thread keeps the timings stable."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A built demo recipe: 4 image pairs ("a red circle on the left") and 4 video pairs (squares moving right)."""
    out = tmp_path_factory.mktemp("sft_demo")
    build_recipe(demo_recipe(n_images=4, n_videos=4), out)
    return out


@pytest.fixture(scope="module")
def records(demo):
    return load_split(demo, "train") + load_split(demo, "test")


@pytest.fixture(scope="module")
def traces(records):
    return synthetic_traces(records, JUDGE, seed=0)


def _cfg(tiny_checkpoint, data, out, **overrides):
    flags = {"model": str(tiny_checkpoint("qwen2_5_vl")), "train_data": str(data), "output_dir": str(out),
             "max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1e-3, "logging_steps": 1,
             "save_strategy": "no", "use_cpu": True, "seed": 0, "disable_tqdm": True, "initial_frames": 2,
             "gradient_checkpointing": False, "dataloader_num_workers": 0, **overrides}
    return load_config(SFTConfig, None, flags)


def test_synthetic_traces_run_the_tools_and_end_in_the_labels(records, traces):
    judge = JudgeScorer(None, None, JUDGE)
    assert len(traces) == len(records) and {r.id.split("/")[0] for r in records} == {"shapes_images",
                                                                                     "shapes_videos"}
    for record, traj in zip(records, traces):
        messages, images, template = judge.conversation(record)
        # The first turn is exactly the judge's inference prompt (messages and pixels).
        assert traj.messages[:len(messages)] == messages and traj.meta["template"] == template
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(traj.images, images))
        final = traj.messages[-1]
        assert final["role"] == "assistant" and "tool_calls" not in final
        verdict = parse_verdict(final["content"], dimensions=JUDGE_DIMENSIONS[template])
        assert verdict.ok and verdict.verdicts == {d: record.label for d in JUDGE_DIMENSIONS[template]}
        assert traj.verdict == verdict.verdicts and traj.finish_reason == "answer"
        # One look per candidate (select_frames per video, crop per image), all executed without error.
        calls = traj.messages[len(messages)]["tool_calls"]
        expected = "select_frames" if template == "pairwise_video" else "crop"
        assert [c["function"]["name"] for c in calls] == [expected] * 2
        assert traj.tool_calls == 2 and traj.tool_failures == 0
        tool_texts = [m["content"][-1]["text"] for m in traj.messages if m["role"] == "tool"]
        assert len(tool_texts) == 2 and not any(t.startswith("Error") for t in tool_texts)
        # The last turn's tool results stay in view (the memory window keeps that turn's whole set: both calls).
        returned = traj.images[len(images):]
        shown = [p for m in traj.messages if m["role"] == "tool" for p in m["content"] if p["type"] == "image"]
        assert len(returned) == len(shown) >= 2
        # Real decoded pixels: at least one returned view shows the shape on its plain background (a crop of the
        # other image may be background only).
        assert all(np.asarray(image).ndim == 3 for image in returned)
        assert any(np.asarray(image).std() > 5 for image in returned)
    video = next(t for t in traces if t.meta["template"] == "pairwise_video")
    args = video.messages[1]["tool_calls"][1]["function"]["arguments"]
    # Frames spread over the clip in its workspace (8-frame demo clips: workspace 1..8), on video 2.
    assert args["video"] == 2 and args["target_frames"][0] == 1 and args["target_frames"][-1] == 8
    assert f"Video 2: {len(args['target_frames'])} of its 8 frames" in video.messages[-2]["content"][-1]["text"]


def test_unlabelled_dimensions_take_the_overall_label_and_the_seed_varies_wording(records):
    pair = PreferencePair(id="p", prompt="q", a=records[0].a, b=records[0].b, label="A", dimensions={"MQ": "tie"})
    assert verdict_for(pair, ("VQ", "MQ", "TA", "overall")) == {"VQ": "A", "MQ": "tie", "TA": "A", "overall": "A"}
    few = records[:3]

    def texts(seed):
        return [json.dumps(t.messages[1:]) for t in synthetic_traces(few, JUDGE, seed=seed)]

    assert texts(0) == texts(0) and texts(0) != texts(1)


def test_collator_trains_only_assistant_tokens(tiny_checkpoint, traces, capsys):
    from transformers import AutoProcessor

    from mmreward.agent.tools import tool_schemas

    processor = AutoProcessor.from_pretrained(tiny_checkpoint("qwen2_5_vl"))
    tools = tool_schemas(JUDGE.tools)
    pair = [next(t for t in traces if t.meta["template"] == name) for name in ("pairwise_image", "pairwise_video")]
    kept = tokenize_all(pair, processor, tools)
    batch = TrajectoryCollator(kept, processor, tools)([{"index": 0}, {"index": 1}])
    tok = processor.tokenizer
    assert batch["labels"].shape == batch["input_ids"].shape and "pixel_values" in batch
    for row, traj in enumerate(kept):
        labels = batch["labels"][row]
        trained = tok.decode(labels[labels != -100])
        # Tool calls and the verdict are learned; the prompt, the schemas and the tool output are not.
        assert '"name": "crop"' in trained or '"name": "select_frames"' in trained
        assert "<answer>" in trained and json.dumps(traj.verdict) in trained and trained.count("<|im_end|>") == 2
        assert "generated from the same prompt" not in trained and "<tool_response>" not in trained
        assert "Crop of image" not in trained and "of its 8 frames" not in trained and "# Tools" not in trained
        # Right padding: everything after the sequence is ignored.
        n = len(traj.input_ids)
        assert (labels[n:] == -100).all() and batch["attention_mask"][row, :n].all()
    short = min(len(t.input_ids) for t in kept)
    assert len(tokenize_all(pair, processor, tools, max_length=short)) == 1
    capsys.readouterr()
    tokenize_all(pair, processor, tools, progress=True)
    assert "tokenising trajectories: 100%" in capsys.readouterr().err  # a progress bar, not minutes of silence
    with pytest.raises(ValueError, match="max_length"):
        tokenize_all(pair, processor, tools, max_length=short, on_overflow="error")


def test_config_defaults_and_validation(tiny_checkpoint, demo, tmp_path):
    cfg = _cfg(tiny_checkpoint, demo, tmp_path, tools=["select_frames"], workspace_frames=32)
    assert not cfg.remove_unused_columns and cfg.dataset_kwargs == {"skip_prepare_dataset": True}
    assert cfg.report_to in ("none", [], ["none"]) and cfg.bf16 is False and cfg.freeze_vision
    judge = cfg.judge_config()
    assert judge.tools == ["select_frames"] and judge.workspace_frames == 32 and judge.backbone == cfg.model
    with pytest.raises(ValueError, match="unknown tool"):
        _cfg(tiny_checkpoint, demo, tmp_path, tools=["teleport"])
    with pytest.raises(ValueError, match="on_overflow"):
        _cfg(tiny_checkpoint, demo, tmp_path, on_overflow="truncate")


def test_two_steps_change_parameters_and_save_a_judge(tiny_checkpoint, demo, tmp_path):
    seen = {}

    class Grab(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            seen["before"] = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}

        def on_train_end(self, args, state, control, model=None, **kw):
            seen["after"] = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
            seen["losses"] = [h["loss"] for h in state.log_history if "loss" in h]

    out = train(_cfg(tiny_checkpoint, demo, tmp_path / "full"), callbacks=[Grab()])
    assert len(seen["losses"]) == 2 and all(np.isfinite(seen["losses"]))
    changed = [k for k in seen["before"] if not torch.equal(seen["before"][k], seen["after"][k])]
    assert any("language_model" in k for k in changed)
    assert not any(".visual." in k for k in seen["before"])  # freeze_vision (default) keeps the tower fixed
    judge = load_scorer(out)
    assert isinstance(judge, JudgeScorer) and judge.config.tools == ["select_frames", "crop"]
    assert judge.config.initial_frames == 2 and judge.config.backbone == str(tiny_checkpoint("qwen2_5_vl"))


def test_lora_on_teacher_trajectory_jsonl_saves_the_adapter(tiny_checkpoint, traces, tmp_path):
    data = write_trajectories(tmp_path / "teacher.jsonl", traces[:3])
    out = train(_cfg(tiny_checkpoint, data, tmp_path / "lora", lora_r=4, lora_alpha=8))
    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in adapter.items())  # B starts at 0: it trained
    assert not (out / "backbone").exists()
    assert isinstance(load_scorer(out), JudgeScorer)


def test_a_tiny_judge_taught_one_trace_runs_a_real_tool_using_episode(tiny_checkpoint, records, tmp_path):
    """SFT on the synthetic trace of one video pair until it is memorised; then the saved judge, run with HF
    generate through `JudgeScorer.run`, writes its own select_frames calls, which parse and execute."""
    record = next(r for r in records if r.id.startswith("shapes_videos"))
    write_jsonl(tmp_path / "one.jsonl", [record])
    cfg = _cfg(tiny_checkpoint, tmp_path / "one.jsonl", tmp_path / "one", max_steps=100, learning_rate=5e-3,
               per_device_train_batch_size=1, lr_scheduler_type="constant", logging_steps=50,
               tools=["select_frames"], max_new_tokens=160, swap_augment=False)
    judge = load_scorer(train(cfg))
    episode = judge.run([record])[0]
    assert episode.tool_calls >= 1 and episode.tool_failures == 0
    calls = [c["function"]["name"] for m in episode.messages if m.get("tool_calls") for c in m["tool_calls"]]
    assert set(calls) == {"select_frames"} and len(episode.images) > 2 * cfg.initial_frames
    assert episode.finish_reason == "answer" and episode.verdict == verdict_for(record, JUDGE_DIMENSIONS[
        "pairwise_video"])


def test_labelled_positions_only_gives_the_same_loss_and_gradients(tiny_checkpoint):
    """The CPU shortcut scores only labelled positions; loss and gradients equal TRL's all-position path."""
    from transformers import AutoModelForImageTextToText
    from trl.trainer.utils import add_fused_lm_head

    from mmreward.train.sft import labelled_positions_only

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(tiny_checkpoint(), dtype=torch.float32)
    add_fused_lm_head(model)
    ids = torch.randint(10, 200, (2, 24))
    labels = ids.clone()
    labels[:, :15] = -100  # only the tail is trained on, as in a judge trace
    labels[1, 20:] = -100

    def loss_and_grad():
        model.zero_grad()
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels, fused_lm_head=True).loss
        loss.backward()
        return loss.detach(), model.get_output_embeddings().weight.grad.clone()

    import trl.trainer.utils as trl_utils

    everywhere = loss_and_grad()
    with labelled_positions_only():
        assert trl_utils._use_triton(torch.device("cpu"))  # the compact path is the one taken
        compact = loss_and_grad()
    assert not trl_utils._use_triton(torch.device("cpu"))
    after = loss_and_grad()  # the switch is undone on exit
    assert torch.allclose(everywhere[0], compact[0], atol=1e-6) and torch.allclose(everywhere[0], after[0])
    assert torch.allclose(everywhere[1], compact[1], atol=1e-6)
    assert everywhere[1].abs().sum() > 0
