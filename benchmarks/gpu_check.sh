#!/usr/bin/env bash
# Everything hwkit needs checked on a CUDA machine, in one run of about 8 minutes:
# the CUDA tests, the training-speed benchmark at Graves' sizes (points/s and peak
# memory), and a short graves-preset run of each net on the demo corpus with --bf16
# and --compile (whether each was kept, and the points/s a user would see).
#
# Written for a machine that has torch but cannot download (the session's device
# tool: see BENCHMARKS.md, "CUDA"). The packages such an image lacks travel as
# wheels in .whl/; fetch them here first, once:
#
#     echo /.whl/ >> .git/info/exclude
#     python3 -m pip download --no-deps --only-binary=:all: -d .whl svgwrite Hershey-Fonts
#
# then run `bash benchmarks/gpu_check.sh` there with .whl carried. Logs go to $OUT
# (or benchmarks/out/gpu when OUT is unset); the summary is printed at the end.
set -u
out="${OUT:-benchmarks/out/gpu}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/hwkit-site .whl/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/hwkit-site"
fi

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.log, record the exit code
  local name=$1 limit=$2
  shift 2
  echo "== $name: $*"
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  echo "$name rc=$?" | tee -a "$out/summary.txt"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
} >"$out/summary.txt" 2>&1
step tests 150 python3 -m pytest -q -rs -s tests/test_cuda.py tests/test_models.py tests/test_sample.py
step bench 200 python3 benchmarks/bench_models.py --device cuda --points 700
step bench_b128 120 python3 benchmarks/bench_models.py --device cuda --points 700 --batch 128 --quick
work=$(mktemp -d)
(cd "$work" && python3 -m hwkit prepare >/dev/null 2>&1)
for kind in prediction synthesis; do
  step "train_$kind" 150 bash -c "cd $work && python3 -m hwkit train --model $kind --preset graves --batch-size 64 \
    --time-limit 100s --bf16 --compile --name $kind"
  cp "$work/models/$kind/metrics.jsonl" "$out/metrics_$kind.jsonl" 2>/dev/null
done
cat "$out/summary.txt"
grep -h -E "^\|" "$out/bench.log" "$out/bench_b128.log"
grep -h -E "^note|points/s|passed|failed" "$out"/train_*.log "$out/tests.log"
