#!/usr/bin/env bash
# The GPU check: every CUDA path pilot promises, in one run on a machine with an NVIDIA GPU.
#
#   bench/gpu_check.sh OUT [DATA] [PONG_SECONDS]
#
# Sections, each printed to OUT/report.txt:
#   machine      GPU, driver, CPU, torch
#   tests        tests/test_cuda.py: every agent trains on CUDA through the CLI (Atari,
#                navigation and driving ids), CUDA checkpoints play on the CPU and train on,
#                a CPU checkpoint trains on on CUDA, CUDA runs are reproducible, and the GPU
#                computes what the CPU does
#   spine        bench/spine.py --device cuda: PPO and DQN on Breakout against SB3 on the
#                same GPU, and our CPU-vs-CUDA steps/s
#   profile      bench/gpu_profile.py: syncs and copies per step, the heaviest operators
#   perception   the fusion network's training speed (frames/s), both presets, on CUDA
#                (needs DATA: `pilot perception collect DATA --split train --seeds 0-11`)
#   pong         PPO on Pong on CUDA for PONG_SECONDS (default 420), started first and run
#                beside the rest on the upper half of the cores; its episodes go to
#                OUT/pong_episodes.csv. The other sections use the lower half, so their
#                figures are measured beside a busy machine: compare ratios within one run.
#
# PYTHON picks the interpreter (default python3); pilot must be importable by it.
set -u
OUT=${1:?usage: bench/gpu_check.sh OUT [DATA] [PONG_SECONDS]}
DATA=${2:-}
PONG_SECONDS=${3:-420}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ -n "$DATA" ] && DATA=$(cd "$DATA" && pwd)
WORK=$(mktemp -d)
# PYTHONSAFEPATH: `python -m` from the checkout must import the installed pilot, not ./pilot
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE PYTHONSAFEPATH=1
exec > >(tee "$OUT/report.txt") 2>&1

cores=$(nproc)
half=$((cores / 2))
LOW="taskset -c 0-$((half - 1))"
HIGH="taskset -c $half-$((cores - 1))"
command -v taskset >/dev/null || { LOW=; HIGH=; echo "no taskset: the sections share all cores"; }
pilot() { $PY -m pilot "$@"; }
section() { echo; echo "=== $(date -u +%T) $*"; }
start=$(date +%s)

section machine
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
lscpu | grep -E "^Model name|^CPU\(s\)"
$PY -c "import torch, sys; print('python', sys.version.split()[0], '| torch', torch.__version__, '| CUDA', torch.version.cuda, '| cuDNN', torch.backends.cudnn.version(), '|', torch.cuda.get_device_name())"
$PY -c "import numpy, gymnasium, ale_py, stable_baselines3 as sb3; print('numpy', numpy.__version__, '| gymnasium', gymnasium.__version__, '| ale_py', ale_py.__version__, '| SB3', sb3.__version__)"

section "pong: PPO on Pong, CUDA, ${PONG_SECONDS} s on cores $half-$((cores - 1)), in the background"
(
    cd "$WORK" && $HIGH timeout --signal=INT "$PONG_SECONDS" $PY -m pilot train ppo \
        --env pilot/Atari-Pong-v0 --device cuda --no-progress --runs-dir "$WORK/pong" \
        --set n_envs=16 --set n_minibatches=8 --set checkpoint_every=0 >"$WORK/pong.log" 2>&1
) &
pong=$!

section "tests: tests/test_cuda.py on cores 0-$((half - 1))"
$LOW $PY -m pytest -q -n 4 -p no:cacheprovider --durations=5 tests/test_cuda.py

section "spine: PPO and DQN on Breakout against SB3, both on CUDA"
$LOW $PY bench/spine.py --device cuda --only ppo-breakout,dqn-breakout --seconds 10 --rounds 2
section "spine: our CPU vs CUDA (one torch thread on the CPU side)"
$LOW $PY bench/spine.py --only devices --seconds 10 --rounds 1

section "profile: PPO and DQN on Breakout under torch.profiler"
$LOW $PY bench/gpu_profile.py --steps 4096 --rows 10

if [ -n "$DATA" ]; then
    for preset in small gpu; do
        section "perception: the $preset preset, 300 steps on CUDA"
        (cd "$WORK" && $LOW $PY -m pilot perception train "$DATA" --preset "$preset" \
            --device cuda --steps 300 --runs-dir "$WORK/perception" --no-progress)
    done
fi

section "pong: waiting for the run to end"
wait "$pong"
tail -n 5 "$WORK/pong.log"
csv=$(ls "$WORK"/pong/*/episodes.csv 2>/dev/null | head -1)
if [ -n "$csv" ]; then
    cp "$csv" "$OUT/pong_episodes.csv"
    $PY - "$csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
ret = [float(r["return"]) for r in rows]
print(f"{len(rows)} episodes, last at step {rows[-1]['step']}, {rows[-1]['time']} s" if rows else "no episode")
for k in range(20, len(ret) + 1, max(1, len(ret) // 12)):
    print(f"  step {rows[k - 1]['step']:>9}  {float(rows[k - 1]['time']):7.0f} s  mean of 20 episodes {sum(ret[k - 20:k]) / 20:6.2f}")
hit = next((k for k in range(20, len(ret) + 1) if sum(ret[k - 20:k]) / 20 >= 18), None)
if hit:
    print(f"mean of 20 episodes >= 18 first at step {rows[hit - 1]['step']}, {rows[hit - 1]['time']} s")
else:
    print("the mean of 20 episodes did not reach 18")
EOF
fi
section "done in $(($(date +%s) - start)) s"
sleep 1  # let tee write the last lines
