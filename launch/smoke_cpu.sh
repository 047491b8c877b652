#!/usr/bin/env bash
# One-command CPU smoke run on a tiny random-weight Qwen2.5-VL (about a minute on 2 cores), from the repo root:
#   launch/smoke_cpu.sh [WORKDIR]        # PYTHON=.venv/bin/python launch/smoke_cpu.sh without an active venv
# tiny model -> demo data -> Bradley-Terry training -> scoring a few test pairs with each trained checkpoint.
# Later stages (sft, rft, grpo, eval) append their steps below the scoring step.
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

# --- later stages (sft, rft, grpo, eval) go here ---
echo "smoke run OK: $work"
