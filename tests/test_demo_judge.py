"""`mmreward demo judge`: the per-stage metrics by hand, the results files, and (short settings) a judge that
learns the tool-necessity task from teacher traces and loses it when its tools are taken away."""

import json

import pytest

from mmreward.data.schema import Candidate, MediaItem, PreferencePair
from mmreward.data.trajectory import Trajectory
from mmreward.demo_judge import METRICS, JudgeDemoSettings, episode_metrics, format_table, run_judge_demo

# SFT steps of the short-settings learning test. Measured with seed 0 (the settings' default, fixed here): 0.95 with
# tools, 0.50 without, ~70 s on 2 cores. The step at which the tiny judge starts reading its tool frames depends on
# the seed (seeds 1 and 2 were still at 0.50 after 300 steps; README, "Seeds matter at this scale").
SHORT_SFT_STEPS = 300


def _pair(pid, label):
    side = [Candidate(media=[MediaItem(type="video", path=f"{pid}_{s}.mp4")]) for s in "ab"]
    return PreferencePair(id=pid, prompt="a grey ball that flashes red at about 1.5 s", a=side[0], b=side[1],
                          label=label, meta={"kind": "video", "evidence": {"window": [1.375, 1.625]}})


def _traj(overall, *replies, failures=0):
    tools = [{"role": "tool", "content": [{"type": "text", "text": r}]} for r in replies]
    return Trajectory(id="t", messages=tools, verdict=None if overall is None else {"overall": overall},
                      tool_calls=len(replies), tool_failures=failures)


def test_episode_metrics_by_hand():
    from mmreward.train.traces import both_orders

    records = both_orders([_pair("p", "A"), _pair("q", "B")])  # p (A), p~swap (B), q (B), q~swap (A)
    hit = [f"Video {v}: 1 of its 32 frames (4.00s).\nFrame 13 (t=1.50s), image {v + 8}" for v in (1, 2)]
    miss = "Video 1: 1 of its 32 frames (4.00s).\nFrame 1 (t=0.00s), image 9"
    trajs = [_traj("A", *hit),                 # right, saw the evidence in both videos
             _traj("B", *hit),                 # right on the swap: p is consistent
             _traj("A", miss, "Error: x", failures=1),  # wrong
             _traj(None)]                      # parse failure: q is inconsistent
    m = episode_metrics(records, trajs)
    assert m["accuracy"] == 0.5 and m["position_consistency"] == 0.5 and m["parse_failure_rate"] == 0.25
    assert m["tool_call_validity"] == pytest.approx(5 / 6) and m["evidence_hit_rate"] == 0.5
    assert m["tool_use_rate"] == 0.75 and m["n_pairs"] == 2 and m["n_episodes"] == 4
    # A judge that always answers "A" is right on exactly half of the episodes and never consistent.
    always_a = episode_metrics(records, [_traj("A") for _ in records])
    assert always_a["accuracy"] == 0.5 and always_a["position_consistency"] == 0.0
    assert always_a["tool_call_validity"] == 0.0 and always_a["evidence_hit_rate"] == 0.0


def test_untrained_stage_writes_results_json_table_and_plot(tmp_path):
    from mmreward.data.recipe import load_split

    settings = JudgeDemoSettings(n_videos=4, n_images=4, max_new_tokens=8, max_turns=2, stages=("untrained",),
                                 vocab_size=1024)
    report = run_judge_demo(tmp_path, settings)
    saved = json.loads((tmp_path / "results.json").read_text())
    row = saved["stages"]["untrained"]
    held_out = load_split(tmp_path / "data", "test")
    assert set(saved["stages"]) == {"untrained"} and row["n_pairs"] == len(held_out) >= 1
    assert all(0.0 <= row[k] <= 1.0 for k in METRICS)
    # Eight new tokens never close a verdict: every episode is a parse failure, so nothing is right.
    assert row["parse_failure_rate"] == 1.0 and row["accuracy_tools"] == 0.0 and row["accuracy_no_tools"] == 0.0
    assert (tmp_path / "results.png").stat().st_size > 1000
    table = format_table(report.stages)
    assert "untrained" in table and "acc no tools" in table


def test_unknown_stage_is_a_config_error(tmp_path):
    from mmreward.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown demo stage.*'?dpo'?"):
        run_judge_demo(tmp_path, JudgeDemoSettings(stages=("dpo",)))


def test_cli_demo_judge_mode_parses():
    from mmreward.cli import build_parser

    args = build_parser().parse_args(["demo", "judge", "--sft-steps", "5", "--pairs", "8", "--out", "x", "--seed", "3"])
    assert (args.mode, args.sft_steps, args.pairs, args.out, args.seed) == ("judge", 5, 8, "x", 3)
    assert build_parser().parse_args(["demo"]).mode == "reward"


def test_sft_judge_beats_chance_with_tools_and_drops_without(tmp_path):
    # Short settings: videos only, every prompt naming the same flash time (the flash still lies between the
    # first-look frames, so only select_frames at that time shows which clip matches). Held-out pairs are judged
    # in both orders, so a constant or position-following judge scores exactly 0.5.
    settings = JudgeDemoSettings(n_videos=96, n_images=0, video_places=(1.5,), eval_pairs=None, stages=("sft",),
                                 sft_steps=SHORT_SFT_STEPS, vocab_size=2048, seed=0)
    row = run_judge_demo(tmp_path, settings).stages["sft"]
    assert row["n_pairs"] >= 8 and row["parse_failure_rate"] == 0.0, row
    assert row["tool_call_validity"] == 1.0 and row["evidence_hit_rate"] >= 0.9
    assert row["accuracy_tools"] >= 0.85, row
    # Same model, tools removed from the prompt and the loop: back to chance.
    assert row["accuracy_no_tools"] <= 0.65 and row["accuracy_tools"] - row["accuracy_no_tools"] >= 0.25, row
