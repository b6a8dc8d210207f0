#!/usr/bin/env bash
# The GPU measurements of the performance section (docs/performance.md) in two parts, each made to
# fit one 10-minute slot on a lent or rented GPU; run from the repository root:
#
#   benchmark/perf/gpu_session.sh grid   # the card, the GPU-only tests, then the whole Colored MNIST
#                                        # grid (every method, 4 ratios, 3 seeds, paper budget) timed
#                                        # into a fresh directory, its table, and its comparison with
#                                        # the committed results/reference (report --against)
#   benchmark/perf/gpu_session.sh perf   # perf --device cuda --repeats 3 with the ResNet-18 numerics
#                                        # options, then perf --images at 32 and 224 px
#
# Everything lands in $OUT (default ./gpu-session): at most 8 files per part, flat, so a device
# tool that brings back a few files brings back all of it. The grid stops at GRID_LIMIT_S seconds
# (default 420) with its whole process group, workers included, so a slow grid never eats the
# slot of the next part; what finished is in grid-results.tgz and the store's table says what is
# missing. `tar xzf grid-results.tgz --skip-old-files -C results/reference` adds the runs the
# reference lacks (a job's id does not name its device: a stored CPU run is kept). Other grids
# run the same way, e.g. the matched CNN tables:
#   GRID_ARGS="--backend local --seeds-together 3 --protocol matched --backbone cnn --conflict-pcts 1" benchmark/perf/gpu_session.sh grid
# Settings: DEVICE (cuda), BUDGET (paper), METHODS (all), SEEDS ("0 1 2"), GRID_ARGS
# (extra flags; default --backend local --seeds-together 3, with CUDA MPS started when available),
# PYTHON (python3). With DEVICE=cpu BUDGET=quick METHODS=erm SEEDS=0 it checks itself on a laptop.
set -uo pipefail
part=${1:-}
OUT=${OUT:-gpu-session}
DEVICE=${DEVICE:-cuda}
BUDGET=${BUDGET:-paper}
METHODS=${METHODS:-all}
SEEDS=${SEEDS:-0 1 2}
GRID_LIMIT_S=${GRID_LIMIT_S:-420}
GRID_ARGS=${GRID_ARGS:---backend local --seeds-together 3}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
summary="$OUT/summary-$part.txt"

now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "$*" | tee -a "$summary"; }

environment() {
  say "== $(date -u +%FT%TZ) part $part, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu: /' | tee -a "$summary"
  "$PY" - <<'EOF' 2>&1 | tee -a "$summary"
import platform, torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, device {gpu}")
EOF
}

# Run a command for at most $1 seconds. GNU timeout puts it in a process group of its own and, at
# the limit, signals the whole group (the workers of --backend local too), SIGKILL 15 s later;
# whatever of the group outlives its leader is killed when it returns. Status 124 or 137: stopped.
bounded() {
  local limit=$1; shift
  timeout -k 15 "$limit" "$@" & local pid=$!
  say "process group $pid: ${1##*/}, stopped after $limit s"
  wait "$pid"; local rc=$?
  kill -KILL -- "-$pid" 2>/dev/null
  return "$rc"
}

grid_part() {
  environment
  local t=$(now)
  if [ "$DEVICE" = cuda ]; then
    "$PY" -m pytest -m cuda -q -p no:cacheprovider > "$OUT/gpu-tests.log" 2>&1
    say "GPU-only tests (pytest -m cuda): exit $?, $(seconds_since "$t") s: $(tail -n 1 "$OUT/gpu-tests.log")"
    nvidia-cuda-mps-control -d 2>/dev/null && say "CUDA MPS: started" || say "CUDA MPS: not available"
  fi
  local results; results=$(mktemp -d)/grid
  # shellcheck disable=SC2086  # METHODS, SEEDS and GRID_ARGS are word lists
  local cmd=("$PY" run_bench.py --methods $METHODS --datasets cmnist --seeds $SEEDS --budget "$BUDGET" --device "$DEVICE"
             --results-dir "$results" --no-progress $GRID_ARGS)
  say "grid: ${cmd[*]}"
  t=$(now)
  bounded "$GRID_LIMIT_S" "${cmd[@]}" > "$OUT/grid.log" 2>&1; local rc=$?
  say "grid: exit $rc after $(seconds_since "$t") s (124 or 137: stopped at GRID_LIMIT_S=$GRID_LIMIT_S)"
  "$PY" run_bench.py status "$results" 2>&1 | tee -a "$summary"
  "$PY" run_bench.py report "$results" --compute > "$OUT/grid-table.txt" 2>&1
  if [ "$BUDGET" = paper ]; then
    "$PY" run_bench.py report "$results" --against results/reference > "$OUT/grid-vs-reference.txt" 2>&1
    tail -n 3 "$OUT/grid-vs-reference.txt" | tee -a "$summary"
  fi
  local kept=(jobs); [ -d "$results/artifacts" ] && kept+=(artifacts)  # what results/reference commits
  tar czf "$OUT/grid-results.tgz" -C "$results" "${kept[@]}" 2>/dev/null
  [ "$DEVICE" = cuda ] && echo quit | nvidia-cuda-mps-control 2>/dev/null
  say "part grid done"
}

perf_part() {
  environment
  local quick=(); [ "$BUDGET" = quick ] && quick=(--quick)
  local t=$(now)
  local variants=(channels_last); [ "$DEVICE" = cuda ] && variants=(channels_last bf16 channels_last+bf16)
  "$PY" run_bench.py perf --device "$DEVICE" --repeats 3 --variants "${variants[@]}" "${quick[@]}" > "$OUT/perf.log" 2>&1
  say "perf (ERM, LfF, ResNet-18 + ${variants[*]}): exit $?, $(seconds_since "$t") s"
  t=$(now)
  "$PY" run_bench.py perf --images --device "$DEVICE" --sizes 32 224 "${quick[@]}" > "$OUT/perf-images.log" 2>&1
  say "perf --images (32, 224 px): exit $?, $(seconds_since "$t") s"
  say "part perf done"
}

case "$part" in
  grid) grid_part ;;
  perf) perf_part ;;
  *) echo "usage: benchmark/perf/gpu_session.sh grid|perf   (outputs in \$OUT; see the header)" >&2; exit 2 ;;
esac
