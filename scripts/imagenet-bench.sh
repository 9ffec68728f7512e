#!/usr/bin/env bash
# The ImageNet-scale memory benchmark on CPU: backprop, AugLocal and DGL on the reference's three
# ImageNet settings at 224x224 with 1000 classes (ResNet-34 K = 17 d = 4, ResNet-101 K = 34
# d = 3, VGG-13 K = 10 d = 2, constant depth), a few steps at each batch size, one JSON and one
# Markdown table per network and batch into OUT_DIR (bench-<arch>-b<batch>.{json,md}).
#
# Usage: scripts/imagenet-bench.sh OUT_DIR [BATCH...]       (default batches: 8 32)
# Environment: AUGLOCAL_BIN [target/release/auglocal], AUGLOCAL_STEPS [1],
#   AUGLOCAL_ARCHS [resnet34 resnet101 vgg13].
set -euo pipefail

out=${1:?usage: scripts/imagenet-bench.sh OUT_DIR [BATCH...]}
shift
if (($#)); then batches=("$@"); else batches=(8 32); fi
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${AUGLOCAL_BIN:-$root/target/release/auglocal}
steps=${AUGLOCAL_STEPS:-1}
read -r -a archs <<<"${AUGLOCAL_ARCHS:-resnet34 resnet101 vgg13}"
[[ -x $bin ]] || { echo "imagenet-bench: error: no auglocal binary at $bin (set AUGLOCAL_BIN)" >&2; exit 1; }
mkdir -p "$out"

setting() {
  case $1 in
    resnet34) echo "-k 17 -d 4" ;;
    resnet101) echo "-k 34 -d 3" ;;
    vgg13) echo "-k 10 -d 2" ;;
    *) echo "imagenet-bench: error: no published setting for $1" >&2; exit 2 ;;
  esac
}

for arch in "${archs[@]}"; do
  for batch in "${batches[@]}"; do
    name="$out/bench-$arch-b$batch"
    echo "imagenet-bench: $arch, batch $batch" >&2
    # shellcheck disable=SC2046
    "$bin" bench --arch "$arch" $(setting "$arch") --pyramid none --classes 1000 \
      --rules bp,auglocal,dgl --batch "$batch" --steps "$steps" --warmup 1 \
      --overwrite --save-json "$name.json" >"$name.md"
    cat "$name.md"
  done
done
