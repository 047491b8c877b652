"""The tool-necessity task: the deciding evidence is not in the first look and the oracle call shows it; teacher
traces call the oracle; evidence checks and the evidence / curiosity rewards by hand; RFT keeps both orders."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mmreward.agent.evidence import evidence_seen, record_evidence_seen, tool_views
from mmreward.agent.judge_scorer import JudgeConfig, JudgeScorer
from mmreward.agent.tools import call_tool
from mmreward.agent.tools.context import ToolContext, use_context
from mmreward.data.collate import media_source
from mmreward.data.media import load_image, load_video
from mmreward.data.recipe import build_recipe, load_recipe, load_split
from mmreward.data.recipe.tool_task import tool_task_recipe
from mmreward.data.synthetic.tool_task import FIRST_LOOK_TIMES, FLASH_TIMES
from mmreward.train.reward_fns import REWARD_FNS, evidence_hit, tool_curiosity
from mmreward.train.rft import RFTConfig, sample_and_filter
from mmreward.train.traces import synthetic_traces

ROOT = Path(__file__).resolve().parents[2]
JUDGE = JudgeConfig(backbone="x", tools=["select_frames", "crop"], initial_frames=4, workspace_frames=32,
                    image_max_pixels=56 * 56, tool_max_pixels=112 * 112)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    out = tmp_path_factory.mktemp("tool_task")
    build_recipe(tool_task_recipe(n_videos=4, n_images=4), out)
    records = load_split(out, "train") + load_split(out, "test")
    return sorted(records, key=lambda r: r.id)


def _red(frame) -> bool:
    """Whether a (3, H, W) frame shows a red ball: some pixels far redder than blue."""
    f = frame.float()
    return bool(((f[0] - f[2]) > 80).sum() >= 4)


def _video(item, **kw):
    return load_video(media_source(item), min_pixels=56 * 56, max_pixels=56 * 56, **kw)


def test_recipe_yaml_is_the_recipe_and_labels_alternate(pairs):
    assert load_recipe(ROOT / "data_recipes" / "tool_task.yaml") == tool_task_recipe()
    videos = [p for p in pairs if p.meta["kind"] == "video"]
    assert [p.label for p in videos] == ["A", "B", "A", "B"]
    for p in videos:
        time = p.meta["evidence"]["time"]
        assert time in FLASH_TIMES and f"at about {time:.1f} s" in p.prompt
        assert p.meta["oracle_calls"] == [{"name": "select_frames", "arguments": {"timestamps": [time]}}]


def test_video_evidence_is_between_the_first_look_frames_and_the_oracle_call_shows_it(pairs):
    for p in (r for r in pairs if r.meta["kind"] == "video"):
        right, wrong = (p.a, p.b) if p.label == "A" else (p.b, p.a)
        for cand in (right, wrong):
            first = _video(cand.media[0], nframes=4)
            assert [round(t, 3) for t in first.timestamps] == list(FIRST_LOOK_TIMES)
            assert not any(_red(f) for f in first.frames), f"{p.id}: the first look shows the flash"
        with use_context(ToolContext(videos=[right.media[0], wrong.media[0]], workspace_frames=32,
                                     max_pixels=112 * 112)):
            args = p.meta["oracle_calls"][0]["arguments"]
            shown = [call_tool("select_frames", {**args, "video": v}) for v in (1, 2)]
            decoy = call_tool("select_frames", {"timestamps": [p.meta["decoy_time"]], "video": 1})
        frames = [torch.from_numpy(np.asarray(r.images[0]).transpose(2, 0, 1).copy()) for r in (*shown, decoy)]
        assert [_red(f) for f in frames] == [True, False, False]
        assert record_evidence_seen(p, [r.text for r in shown]) is True
        assert record_evidence_seen(p, [shown[0].text]) is False  # only one video looked at
        assert record_evidence_seen(p, [decoy.text]) is False


def test_image_badge_is_unreadable_at_the_first_look_and_readable_in_the_oracle_crop(pairs):
    for p in (r for r in pairs if r.meta["kind"] == "image"):
        right = p.a if p.label == "A" else p.b
        first = np.asarray(load_image(media_source(right.media[0]), max_pixels=56 * 56)).astype(int)
        with use_context(ToolContext(images=[right.media[0]], max_pixels=112 * 112)):
            crop = call_tool("crop", p.meta["oracle_calls"][0]["arguments"])
        zoom = np.asarray(crop.images[0]).astype(int)
        # The red badge is a 3 px dot of the 56 x 56 first look, about 1% of the 28 x 28 px image token that covers
        # its quadrant; in the 112 x 112 crop it is a 12 px block, a fifth of a token.
        assert ((first[..., 0] - first[..., 2]) > 100).sum() <= 9
        assert ((zoom[..., 0] - zoom[..., 2]) > 150).sum() >= 100
        assert record_evidence_seen(p, [crop.text]) is False  # image 2 was not looked at
        assert evidence_seen(p.meta["evidence"], tool_views([crop.text]), n_videos=0, n_images=1) is True


def test_teacher_traces_call_the_oracle_in_both_orders_and_end_in_the_label(pairs):
    traces = synthetic_traces(pairs, JUDGE, seed=0, swap=True)
    assert len(traces) == 2 * len(pairs)
    assert [t.id for t in traces[:2]] == [pairs[0].id, f"{pairs[0].id}~swap"]
    flip = {"A": "B", "B": "A"}
    for i, record in enumerate(pairs):
        for traj, label in ((traces[2 * i], record.label), (traces[2 * i + 1], flip[record.label])):
            # One candidate per turn: call A's media, note what it showed, call B's, note it, decide.
            turns = [m for m in traj.messages if m["role"] == "assistant"]
            calls = [c for m in turns for c in m.get("tool_calls", [])]
            assert [len(m.get("tool_calls", [])) for m in turns] == [1, 1, 0]
            oracle = record.meta["oracle_calls"][0]
            assert [c["function"]["name"] for c in calls] == [oracle["name"]] * 2
            for n, call in enumerate(calls, 1):
                number = "video" if oracle["name"] == "select_frames" else "image"
                assert call["function"]["arguments"] == {**oracle["arguments"], number: n}
            texts = [m["content"][-1]["text"] for m in traj.messages if m["role"] == "tool"]
            assert record_evidence_seen(record, texts) is True
            assert traj.verdict["overall"] == label and traj.meta["source"] == "oracle"
            # The notes say what each candidate showed at the evidence: the better one the prompt's colour.
            seen = record.meta["evidence"]["seen"]
            # The place is quoted in the prompt's own words, so a judge can copy it from there.
            where = record.meta["evidence"]["phrase"]
            assert where in record.prompt and where == (
                f"at about {record.meta['evidence']['time']:.1f} s" if record.meta["kind"] == "video"
                else f"whose {record.meta['evidence']['region']} badge")
            assert turns[0]["content"].startswith(f"<think>The prompt says {where}; the first look misses it.")
            for slot, turn in zip("AB", turns[1:]):
                word = seen["match"] if slot == label else seen["other"]
                assert turn["content"].startswith(f"<think>{slot} {where}: {word}.")
            assert f"Only {label} matches." in turns[-1]["content"]


def test_no_tool_share_traces_answer_from_the_first_look_without_tools(pairs):
    traces = synthetic_traces(pairs, JUDGE, seed=0, swap=True, no_tool_share=0.5)
    bare = [t for t in traces if t.meta.get("tools") == []]
    assert 0 < len(bare) < len(traces) and len(bare) % 2 == 0  # whole pairs (both orders) go without tools
    for traj in bare:
        assert traj.tool_calls == 0 and [m["role"] for m in traj.messages] == ["user", "assistant"]
        prompt = traj.messages[0]["content"][-1]["text"]
        assert "select_frames" not in prompt and "crop" not in prompt  # no tool paragraph
        assert traj.messages[-1]["content"].startswith("<think>The prompt says ")
    with_tools = [t for t in traces if t.meta.get("tools") is None]
    assert all(t.tool_calls == 2 for t in with_tools)
    # The same seed draws the same pairs.
    again = synthetic_traces(pairs, JUDGE, seed=0, swap=True, no_tool_share=0.5)
    assert [t.meta.get("tools") for t in again] == [t.meta.get("tools") for t in traces]


def test_evidence_checks_by_hand():
    window = {"window": [1.375, 1.625]}
    replies = ["Video 1: 2 of its 32 frames (4.00s).\nFrame 12 (t=1.38s), image 9\nFrame 20 (t=2.38s), image 10",
               "Video 2: 1 of its 32 frames (4.00s).\nFrame 13 (t=1.50s), image 11"]
    assert evidence_seen(window, tool_views(replies), n_videos=2, n_images=0) is True
    assert evidence_seen(window, tool_views(replies[:1]), n_videos=2, n_images=0) is False
    assert evidence_seen(window, tool_views(["Video 2: …\nFrame 17 (t=2.00s), image 3"] + replies[:1]),
                         n_videos=2, n_images=0) is False
    box = {"box": [0.6, 0.1, 0.63, 0.13], "max_area": 0.3}
    quadrant = "Crop of image {} (448x448): x 0.50-1.00, y 0.00-0.50 (pixels 224,0 to 448,224), resized …"
    whole = "Crop of image 1 (448x448): x 0.00-1.00, y 0.00-1.00 (pixels 0,0 to 448,448), resized …"
    assert evidence_seen(box, tool_views([quadrant.format(1), quadrant.format(2)]), n_videos=0, n_images=2)
    assert not evidence_seen(box, tool_views([whole, quadrant.format(2)]), n_videos=0, n_images=2)  # no zoom
    assert evidence_seen({}, tool_views(replies), n_videos=2, n_images=0) is None
    # Model-influenced junk never raises and never counts.
    junk = ["Error: bad", "Video x: Frame 1 (t=1.5s)", "Crop of image 1 (1x1): x nan", "\ud800" * 10, None]
    assert evidence_seen(window, tool_views(junk), n_videos=1, n_images=0) is False


def _episode(*replies, answer='{"overall": "A"}'):
    messages = [{"role": "assistant", "content": "<think>.</think>", "tool_calls": [{}] * len(replies)}]
    messages += [{"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": r}]} for r in replies]
    return messages + [{"role": "assistant", "content": f"<think>.</think><answer>{answer}</answer>"}]


def test_evidence_hit_reward_by_hand(pairs):
    video = next(p for p in pairs if p.meta["kind"] == "video")
    t = video.meta["evidence"]["time"]
    hit = [f"Video {v}: 1 of its 32 frames (4.00s).\nFrame 9 (t={t:.2f}s), image {2 + v}" for v in (1, 2)]
    miss = [f"Video {v}: 1 of its 32 frames (4.00s).\nFrame 1 (t=0.00s), image {2 + v}" for v in (1, 2)]
    raw = json.dumps(video.to_dict())
    plain = json.dumps({**video.to_dict(), "meta": {}})
    completions = [_episode(*hit), _episode(*miss), _episode(hit[0]), _episode(*hit)]
    assert evidence_hit(completions, [raw, raw, raw, plain]) == [1.0, 0.0, 0.0, None]
    assert evidence_hit(completions[1:2], [raw], miss=-0.5) == [-0.5]
    assert REWARD_FNS["evidence_hit"] is evidence_hit and REWARD_FNS["tool_curiosity"] is tool_curiosity


def test_tool_curiosity_by_hand():
    used, idle = _episode("Video 1: …"), _episode()
    # Group "p": 1 of 4 uses tools (rate 0.25): it earns 0.5 * (0.3 - 0.25); group "q": all do (rate 1): nothing.
    rewards = tool_curiosity([used, idle, idle, idle, used, used], ["p", "p", "p", "p", "q", "q"])
    assert rewards == pytest.approx([0.025, 0, 0, 0, 0, 0])
    assert tool_curiosity([used, idle], ["p", "p"], threshold=0.8, coeff=1.0) == pytest.approx([0.3, 0.0])


def test_rft_keeps_both_orders_when_both_are_right(tiny_checkpoint, pairs):
    from transformers import AutoProcessor

    record = next(p for p in pairs if p.meta["kind"] == "image")
    label, other = record.label, {"A": "B", "B": "A"}[record.label]
    answers = iter([label, other] * 4)  # right on the pair, right on its swap

    def policy(conversations, images):
        return [f'<think>.</think><answer>{{"overall": "{next(answers)}"}}</answer>' for _ in conversations]

    processor = AutoProcessor.from_pretrained(tiny_checkpoint("qwen2_5_vl"))
    judge = JudgeScorer(None, processor, JudgeConfig(backbone="x", tools=[], initial_frames=2), generate_fn=policy)
    kept, stats = sample_and_filter(judge, [record], RFTConfig(model="m", train_data="d", samples_per_record=1,
                                                               batch_size=1))
    assert [t.id for t in kept] == [f"{record.id}#0", f"{record.id}~swap#0"]
    assert stats["swap_partner_correct"] == 1.0 and stats["records_with_a_kept_episode"] == 1


def test_advantage_filter_by_hand():
    from mmreward.train.grpo import filter_advantages

    adv = torch.tensor([0.0] * 9 + [10.0])  # mean 1, std sqrt(90 / 9) = 3.162
    assert filter_advantages(adv, 2.0).tolist() == [0.0] * 10  # |10 - 1| = 9 > 6.32: dropped
    assert filter_advantages(adv, 3.0).tolist() == adv.tolist()  # 9 <= 9.49: kept
    assert filter_advantages(torch.tensor([5.0]), 1.0).tolist() == [5.0]


def test_places_narrow_what_the_prompts_name_and_bad_places_are_refused(tmp_path):
    build_recipe(tool_task_recipe(n_videos=4, n_images=4, video_places=[1.5], image_places=["top left"]), tmp_path)
    records = load_split(tmp_path, "train") + load_split(tmp_path, "test")
    for r in records:
        evidence = r.meta["evidence"]
        if r.meta["kind"] == "video":
            assert evidence["time"] == 1.5 and r.meta["decoy_time"] != 1.5 and r.prompt.endswith("at about 1.5 s")
        else:
            assert evidence["region"] == "top left" and r.meta["decoy_region"] != "top left"
    for n, bad in enumerate(([1.7], [], "1.5", [True], ["top left"])):
        with pytest.raises(ValueError, match="places must be a non-empty list of flash times from 0.5, 1.0"):
            build_recipe(tool_task_recipe(n_videos=2, n_images=0, video_places=bad), tmp_path / f"bad{n}")
