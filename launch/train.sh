#!/usr/bin/env bash
# Train with torchrun, on one node or several (run this on every node):
#   launch/train.sh bt launch/configs/bt_qwen25vl_7b_video.yaml [--key value ...]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 launch/train.sh bt CONFIG.yaml   # and NODE_RANK=1 on node1
# Env: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), MASTER_PORT (29500), NPROC_PER_NODE (GPUs, or 1).
# Uses the project's .venv when it exists (make demo / make test create it), else python and torchrun on PATH.
set -euo pipefail
usage="usage: launch/train.sh STAGE CONFIG.yaml [--key value ...]"
stage=${1:?$usage}
config=${2:?$usage}
shift 2
venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin"
if [[ -x $venv/torchrun ]]; then bin="$venv/"; else bin=""; fi
nproc=${NPROC_PER_NODE:-$("${bin}python" -c 'import torch; print(torch.cuda.device_count() or 1)')}
exec "${bin}torchrun" --nnodes "${NNODES:-1}" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$nproc" \
  --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${MASTER_PORT:-29500}" \
  -m mmreward.cli train "$stage" --config "$config" "$@"
