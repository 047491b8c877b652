#!/usr/bin/env bash
# One-command CPU smoke run on a tiny random-weight Qwen2.5-VL (minutes on 2 cores; see launch/README.md), from the repo root:
#   launch/smoke_cpu.sh [WORKDIR]        # PYTHON=.venv/bin/python launch/smoke_cpu.sh without an active venv
# tiny model -> demo data -> Bradley-Terry training (3 configs) -> scoring -> judge SFT -> RFT -> GRPO -> eval
# (judge and BT model on a VideoGen-RewardBench-layout copy of demo pairs) -> scoring with the judge.
set -euo pipefail
work=${1:-$(mktemp -d -t mmreward-smoke-XXXXXX)}
tiny=/tmp/mmreward-tiny/qwen2_5_vl
# The project's .venv when it exists (make demo / make test create it), else whatever python is on PATH.
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
mm() { "$PYTHON" -m mmreward.cli "$@"; }
export HF_HUB_OFFLINE=1

[[ -f $tiny/config.json ]] || mm tiny --family qwen2_5_vl --out "$tiny"
[[ -f $work/data/manifest.json ]] || mm data build data_recipes/demo.yaml --out "$work/data"

# A few held-out pairs to score (write_jsonl re-anchors their media paths to the new file).
"$PYTHON" -c 'import sys
from mmreward.data.recipe import load_split
from mmreward.data.schema import write_jsonl
write_jsonl(sys.argv[2], (lambda r: r[:4] + r[-4:])(load_split(sys.argv[1], "test")))' "$work/data" "$work/few_test.jsonl"

# Bradley-Terry: head scorer, yes-token scorer, VideoAlign-style special tokens + ties; each then scores.
for cfg in bt bt_yes_token bt_video_ties; do
  mm train bt --config "launch/configs/tiny_cpu/$cfg.yaml" --train_data "$work/data" --output_dir "$work/$cfg"
  mm score --model "$work/$cfg" --input "$work/few_test.jsonl" --output "$work/$cfg.scores.jsonl" --no-progress
done

# The judge: SFT on the synthetic tool-use trace of one video pair (enough steps for the tiny model to learn it),
# rejection sampling (greedy, so the learned trace is reproduced and kept), two GRPO steps, then eval and score.
"$PYTHON" -c 'import sys
from mmreward.data.recipe import load_split
from mmreward.data.schema import write_jsonl
pairs = [r for r in load_split(sys.argv[1], "train") if r.id.startswith("shapes_videos")]
write_jsonl(sys.argv[2], pairs[:1])' "$work/data" "$work/one_video_pair.jsonl"
judge=(--tools "[select_frames]" --initial_frames 2 --max_new_tokens 160)
mm train sft --config launch/configs/tiny_cpu/sft.yaml --train_data "$work/one_video_pair.jsonl" \
  --output_dir "$work/sft" --max_steps 100 --learning_rate 5.0e-3 --lr_scheduler_type constant "${judge[@]}"
mm train rft --config launch/configs/tiny_cpu/rft.yaml --model "$work/sft" \
  --train_data "$work/one_video_pair.jsonl" --temperature 0.0 --output_dir "$work/rft" "${judge[@]}"
mm train grpo --config launch/configs/tiny_cpu/grpo.yaml --model "$work/rft/model" \
  --train_data "$work/one_video_pair.jsonl" --max_completion_length 192 --output_dir "$work/grpo" \
  --tools "[select_frames]" --initial_frames 2

# Evaluate the judge on a VideoGen-RewardBench-layout copy of a few demo video pairs, then score with it.
"$PYTHON" -c 'import csv, sys
from pathlib import Path
from mmreward.data.recipe import load_split
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
pairs = [r for r in load_split(sys.argv[1], "test") if r.id.startswith("shapes_videos")][:4]
with open(out / "videogen-rewardbench.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["path_A", "path_B", "A_model", "B_model", "prompt", "VQ", "MQ", "TA", "Overall",
                "fps_A", "num_frames_A", "fps_B", "num_frames_B"])
    for r in pairs:
        lab = {"A": "A", "B": "B", "tie": "same"}[r.label]
        w.writerow([r.a.media[0].local_path(), r.b.media[0].local_path(), "m", "m", r.prompt, lab, lab, lab, lab,
                    4, 8, 4, 8])' "$work/data" "$work/videogen"
mm eval --benchmark videogen_rewardbench --data "$work/videogen" --model "$work/grpo" --scorer judge \
  --out "$work/eval_judge" --no-progress
mm eval --benchmark videogen_rewardbench --data "$work/videogen" --model "$work/bt" --out "$work/eval_bt" \
  --no-progress
mm score --model "$work/grpo" --input "$work/one_video_pair.jsonl" --output "$work/judge.scores.jsonl" \
  --no-progress --on-error skip || [[ $? -eq 3 ]]
echo "smoke run OK: $work"
