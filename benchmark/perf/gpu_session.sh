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
# tool that brings back a few files brings back all of it. Each step has a time limit (GRID_LIMIT_S
# 420, TESTS_LIMIT_S 120, PERF_LIMIT_S 360, IMAGES_LIMIT_S 180) and is stopped there with its whole
# process group, workers included, so a slow step never eats the slot of the next part; the exit
# status is 1 when a step failed or was stopped (the grid excepted: its limit is expected). What
# the grid finished is in grid-results.tgz and the store's table says what is missing.
# `tar xzf grid-results.tgz --skip-old-files -C results/reference` adds the runs the
# reference lacks (a job's id does not name its device: a stored CPU run is kept). Other grids
# run the same way, e.g. the matched CNN tables:
#   GRID_ARGS="--backend local --seeds-together 3 --protocol matched --backbone cnn --conflict-pcts 1" benchmark/perf/gpu_session.sh grid
# Settings: DEVICE (cuda), BUDGET (paper), METHODS (all), SEEDS ("0 1 2"), GRID_ARGS
# (extra flags; default --backend local --seeds-together 3, with CUDA MPS started when available),
# PYTHON (python3). With DEVICE=cpu BUDGET=quick METHODS=erm SEEDS=0 it checks itself on a laptop.
set -uo pipefail
part=${1:-}
case "$part" in
  grid|perf) ;;
  *) echo "usage: benchmark/perf/gpu_session.sh grid|perf   (outputs in \$OUT; see the header)" >&2; exit 2 ;;
esac
OUT=${OUT:-gpu-session}
DEVICE=${DEVICE:-cuda}
BUDGET=${BUDGET:-paper}
METHODS=${METHODS:-all}
SEEDS=${SEEDS:-0 1 2}
GRID_LIMIT_S=${GRID_LIMIT_S:-420}
TESTS_LIMIT_S=${TESTS_LIMIT_S:-120}
PERF_LIMIT_S=${PERF_LIMIT_S:-360}
IMAGES_LIMIT_S=${IMAGES_LIMIT_S:-180}
GRID_ARGS=${GRID_ARGS:---backend local --seeds-together 3}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
summary="$OUT/summary-$part.txt"
work=$(mktemp -d)
running=""      # the process group of the step under way
mps=""          # set when this script started CUDA MPS
failures=()     # steps that did not end as expected

cleanup() {
  [ -n "$running" ] && kill -KILL -- "-$running" 2>/dev/null
  [ -n "$mps" ] && echo quit | nvidia-cuda-mps-control 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM HUP

now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "$*" | tee -a "$summary"; }

environment() {
  say "== $(date -u +%FT%TZ) part $part, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu: /' | tee -a "$summary"
  "$PY" - <<'PYTHON' 2>&1 | tee -a "$summary"
import platform, torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, device {gpu}")
PYTHON
}

# step NAME LIMIT LOG COMMAND...: run COMMAND for at most LIMIT seconds, its output in LOG, and say
# how it ended. GNU timeout puts it in a process group of its own and, at the limit, signals the
# whole group (the workers of --backend local too), SIGKILL 15 s later; whatever of the group
# outlives its leader is killed when it returns. Status 124 or 137: stopped at the limit.
step() {
  local name=$1 limit=$2 log=$3; shift 3
  local t; t=$(now)
  timeout -k 15 "$limit" "$@" > "$log" 2>&1 & running=$!
  say "$name: process group $running, limit $limit s: $*"
  wait "$running"; local rc=$?
  kill -KILL -- "-$running" 2>/dev/null; running=""
  say "$name: exit $rc after $(seconds_since "$t") s$([ "$rc" = 124 ] || [ "$rc" = 137 ] && echo " (stopped at its limit)")"
  return "$rc"
}

grid_part() {
  environment
  if [ "$DEVICE" = cuda ]; then
    step "GPU-only tests" "$TESTS_LIMIT_S" "$OUT/gpu-tests.log" "$PY" -m pytest -m cuda -q -p no:cacheprovider || failures+=("GPU-only tests")
    say "GPU-only tests: $(tail -n 1 "$OUT/gpu-tests.log")"
    if nvidia-cuda-mps-control -d 2>/dev/null; then mps=1; say "CUDA MPS: started"; else say "CUDA MPS: not available"; fi
  fi
  local results="$work/grid"
  # shellcheck disable=SC2086  # METHODS, SEEDS and GRID_ARGS are word lists
  local cmd=("$PY" run_bench.py --methods $METHODS --datasets cmnist --seeds $SEEDS --budget "$BUDGET" --device "$DEVICE"
             --results-dir "$results" --no-progress $GRID_ARGS)
  step grid "$GRID_LIMIT_S" "$OUT/grid.log" "${cmd[@]}"
  local rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 124 ] || [ "$rc" = 137 ] || failures+=(grid)  # stopped at the limit: expected, reported
  [ -d "$results" ] && "$PY" run_bench.py status "$results" 2>&1 | tee -a "$summary"
  if [ ! -d "$results/jobs" ]; then
    say "grid: no job finished"
    failures+=("grid: nothing stored")
  else
    "$PY" run_bench.py report "$results" --compute > "$OUT/grid-table.txt" 2>&1 || failures+=("grid table")
    if [ "$BUDGET" = paper ]; then
      "$PY" run_bench.py report "$results" --against results/reference > "$OUT/grid-vs-reference.txt" 2>&1
      tail -n 3 "$OUT/grid-vs-reference.txt" | tee -a "$summary"
    fi
    local kept=(jobs); [ -d "$results/artifacts" ] && kept+=(artifacts)  # what results/reference commits
    tar czf "$OUT/grid-results.tgz" -C "$results" "${kept[@]}" || failures+=("grid archive")
  fi
}

perf_part() {
  environment
  local quick=(); [ "$BUDGET" = quick ] && quick=(--quick)
  local variants=(channels_last); [ "$DEVICE" = cuda ] && variants=(channels_last bf16 channels_last+bf16)
  step perf "$PERF_LIMIT_S" "$OUT/perf.log" "$PY" run_bench.py perf --device "$DEVICE" --repeats 3 --variants "${variants[@]}" \
    ${quick[@]+"${quick[@]}"} || failures+=(perf)
  step "perf --images" "$IMAGES_LIMIT_S" "$OUT/perf-images.log" "$PY" run_bench.py perf --images --device "$DEVICE" --sizes 32 224 \
    ${quick[@]+"${quick[@]}"} || failures+=("perf --images")
}

"${part}_part"
if [ "${#failures[@]}" -gt 0 ]; then
  say "part $part done; did not end as expected: $(IFS=,; echo "${failures[*]}")"
  exit 1
fi
say "part $part done"
