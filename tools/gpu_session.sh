#!/usr/bin/env bash
# One device call: the CUDA speed benchmark (alone on the GPU), then three trainings of
# the bundled model side by side with the CUDA tests, on two new capitals drills. Each
# run's last.pt is copied every epoch, and the last three of each (or the best) come back
# as weights only, to be chosen among on benchmarks/select_texts.txt. Stage 5 came from
# this script with SEED=5 (run B), then a --resume of each run for 230 s more. From stage 6 the
# runs train its jump table with the rest; refitting the table on the CPU afterwards
# (tools/fit_jump_table.py on the chosen checkpoint) is a ten-minute step worth measuring.
#   T_TRAIN: seconds each training runs (default 330); DEVICE: cuda (cpu for a dry run);
#   LINES: lines per drill corpus (default 24000); SEED: the first drill's seed (default 7,
#   a drill no bundled model has seen; the second drill is SEED + 1).
set -u
T_TRAIN=${T_TRAIN:-330}
DEVICE=${DEVICE:-cuda}
LINES=${LINES:-24000}
SEED=${SEED:-7}
out="${OUT:-/tmp/gpuout}"
logs=/tmp/gpu-logs snap=/tmp/gpu-snap
mkdir -p "$out" "$logs" "$snap"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/hwkit-site .whl/*.whl || exit 1
  rm -rf /tmp/hwkit-site/tests  # Hershey-Fonts' wheel ships a top-level "tests" package
  export PYTHONPATH="$PYTHONPATH:/tmp/hwkit-site"
fi
log="$logs/session.log"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$log"; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
  nproc; } >>"$log" 2>&1

stamp "prepare"
python3 -m hwkit prepare --demo --lines "$LINES" --writers 800 --seed "$SEED" --capitals 0.5 -o cache/capsA.h5 --force >"$logs/prep5.log" 2>&1
python3 -m hwkit prepare --demo --lines "$LINES" --writers 800 --seed $((SEED + 1)) --capitals 0.3 -o cache/capsB.h5 --force >"$logs/prep6.log" 2>&1
tail -n 3 "$logs/prep5.log" "$logs/prep6.log" >>"$log"

if [ "$DEVICE" = cuda ]; then
  stamp "bench (graves sizes, alone on the GPU)"
  timeout 60 python3 benchmarks/bench_models.py --device cuda --points 700 --quick >"$logs/bench.log" 2>&1
  timeout 45 python3 benchmarks/bench_models.py --device cuda --points 700 --batch 128 --quick >"$logs/bench128.log" 2>&1
  stamp "bench done"
fi

train() {  # train NAME STORE BATCH LR
  timeout -s TERM $((T_TRAIN + 120)) python3 -m hwkit train "$2" --init-from hwkit/pretrained/demo-synthesis.pt --preset demo \
    --batch-size "$3" --lr "$4" --lr-decay 0.5 --patience 4 --epochs 100 --time-limit "${T_TRAIN}s" \
    --device "$DEVICE" --seed "$SEED" --name "$1" >"$logs/train_$1.log" 2>&1
}
stamp "train"
train A cache/capsA.h5 128 0.0004 & pa=$!
train B cache/capsA.h5 256 0.0006 & pb=$!
train C cache/capsB.h5 256 0.0004 & pc=$!
if [ "$DEVICE" = cuda ]; then
  (timeout 240 python3 -m pytest -q -rs -x -p no:cacheprovider tests/test_cuda.py >"$logs/tests.log" 2>&1; stamp "cuda tests rc=$?") &
fi
# a copy of last.pt each time it changes (once per epoch)
while kill -0 $pa 2>/dev/null || kill -0 $pb 2>/dev/null || kill -0 $pc 2>/dev/null; do
  for r in A B C; do
    f=models/$r/last.pt
    [ -f "$f" ] || continue
    m=$(stat -c %Y "$f")
    [ -f "$snap/$r-$m.pt" ] || { sleep 1; cp "$f" "$snap/$r-$m.pt"; }
  done
  sleep 5
done
wait
stamp "trained"
python3 - "$out" "$snap" <<'EOF' >>"$log" 2>&1
import sys, pathlib, tarfile, io
from hwkit.checkpoint import Checkpoint
out, snap = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for run in "ABC":
    snaps = sorted(snap.glob(f"{run}-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    kept = {}
    for p in snaps:  # one per step
        ck = Checkpoint.load(p)
        kept[ck.step] = ck
    best = pathlib.Path(f"models/{run}/best.pt")
    if best.exists():
        ck = Checkpoint.load(best)
        kept[ck.step] = ck
        best_step = ck.step
    steps = sorted(kept)[-3:]  # at most three: four would pass the 16 MiB a returned file may hold
    if best.exists() and best_step not in steps:
        steps = steps[1:] + [best_step]
    with tarfile.open(out / f"models_{run}.tar", "w") as tar:
        for step in sorted(steps):
            name = f"{run}-s{step}.pt"
            kept[step].weights_only().save(snap / name)
            tar.add(snap / name, arcname=name)
            print(run, name, "best valid so far", kept[step].best_valid)
EOF
tar czf "$out/logs.tgz" models/[ABC]/metrics.jsonl "$logs" 2>/dev/null
stamp "done"
cat "$log"
grep -h -E "^\|" "$logs/bench.log" "$logs/bench128.log" 2>/dev/null
grep -h -E "passed|failed|error" "$logs/tests.log" 2>/dev/null | tail -3
for r in A B C; do tail -4 "$logs/train_$r.log"; done
