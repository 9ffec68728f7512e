#!/usr/bin/env bash
# The GPU benchmark: backprop against AugLocal on one CUDA GPU, ResNet-32 (K = 16, d = 2) and
# ResNet-110 (K = 55, d = 3) at batch 1024, writing JSON and Markdown into OUT_DIR. Designed to
# finish in under 8 minutes on one modern GPU.
#
# Usage: scripts/gpu-bench.sh OUT_DIR
# The auglocal binary must have the cuda backend: build it with
#   cargo build --release -p auglocal-cli --features cuda
# (it needs no CUDA toolkit to build; it loads the driver at run time) and carry it along.
# Environment (for other machines, and for testing on a CPU with tiny settings):
#   AUGLOCAL_BIN     the binary            [target/release/auglocal]
#   AUGLOCAL_DEVICE  cpu, wgpu, cuda[:N]   [cuda:0]
#   AUGLOCAL_BATCH   batch size            [1024]
#   AUGLOCAL_STEPS   measured steps        [5]
#   AUGLOCAL_WIDTH   width multiplier      [1]
#   AUGLOCAL_TIMEOUT seconds per bench     [200]
set -euo pipefail

out=${1:?usage: scripts/gpu-bench.sh OUT_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${AUGLOCAL_BIN:-$root/target/release/auglocal}
device=${AUGLOCAL_DEVICE:-cuda:0}
batch=${AUGLOCAL_BATCH:-1024}
steps=${AUGLOCAL_STEPS:-5}
width=${AUGLOCAL_WIDTH:-1}
limit=${AUGLOCAL_TIMEOUT:-200}

[[ -x $bin ]] || { echo "gpu-bench: error: no auglocal binary at $bin (set AUGLOCAL_BIN)" >&2; exit 1; }
mkdir -p "$out"
{
  echo "# auglocal GPU benchmark"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- device: $device"
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "- gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -n 1)"
  fi
  echo "- binary: $("$bin" --version)"
  echo
} >"$out/README.md"

status=0
bench() {
  local name=$1
  shift
  echo "gpu-bench: $name" >&2
  if timeout "$limit" "$bin" bench --rules bp,auglocal --batch "$batch" --steps "$steps" \
    --width "$width" --device "$device" --overwrite --save-json "$out/$name.json" "$@" >"$out/$name.md"; then
    { echo "## $name"; echo; cat "$out/$name.md"; echo; } >>"$out/README.md"
  else
    echo "gpu-bench: error: $name failed or ran past ${limit}s" >&2
    { echo "## $name"; echo; echo "failed or ran past ${limit}s"; echo; } >>"$out/README.md"
    status=1
  fi
}

bench resnet32 --arch resnet32 --k 16 --depth 2 --pyramid 0.5
bench resnet110 --arch resnet110 --k 55 --depth 3 --pyramid 0.5
echo "gpu-bench: results in $out" >&2
exit $status
