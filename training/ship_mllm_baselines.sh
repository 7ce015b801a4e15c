#!/usr/bin/env bash
# The shipped MLLM baselines, task by task: SFT (training/configs/mllm_ship_<task>_sft.yaml), then the RL preset
# (mllm_ship_<task>_rl.yaml, starting from the SFT policy), then both policies copied into checkpoints/ with their
# model cards. A stage whose policy exists is skipped and an interrupted one resumes from its last checkpoint
# (training time is counted across resumes), so the chain continues where it stopped.
#
#   bash training/ship_mllm_baselines.sh                 # every task
#   bash training/ship_mllm_baselines.sh maze sudoku     # some tasks
#   THREADS=1 bash training/ship_mllm_baselines.sh tsp   # beside another training on a 2-core machine
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
THREADS=${THREADS:-2}
tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(maze frozenlake sudoku tsp jigsaw)
for task in "${tasks[@]}"; do
    for stage in sft rl; do
        config=training/configs/mllm_ship_${task}_${stage}.yaml
        [ -f "$config" ] || { echo "ship_mllm_baselines: no $config; expected a task with shipped MLLM configs" >&2; exit 2; }
        policy=runs/mllm/${task}-${stage}/policy
        if [ ! -f "$policy/diffthinker_policy.json" ]; then
            echo "== $task $stage: $config"
            "$PY" training/train_mllm_rl.py --config "$config" num_threads="$THREADS" --resume
        fi
        "$PY" training/ship_checkpoint.py "$policy" "checkpoints/mllm-tiny-${task}-${stage}"
    done
done
