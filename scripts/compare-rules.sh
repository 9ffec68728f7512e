#!/usr/bin/env bash
# Backprop against local learning on real images: trains one network on the real Fashion-MNIST
# (28x28 grey, padded to 32x32 RGB; it stands in for CIFAR-10) with bp, greedy (K=16), dgl
# (K=16), infopro (K=16), predsim (K=16) and auglocal (K=16, d=2, pyramid 0.5; for ResNet-110
# K=55, d=3; the other local rules K=55) at each budget, with
# identical data order and hyperparameters, evaluating on the full 10,000-image test set with
# every aux head's accuracy. Then writes results/fashion-mnist-<arch>.{json,md} and two charts.
#
# Usage: scripts/compare-rules.sh [RUNS_DIR]        (default: runs/compare)
# Environment:
#   AUGLOCAL_BIN      the auglocal binary            [target/release/auglocal, built if missing]
#   AUGLOCAL_ARCH     resnet32 or resnet110          [resnet32]
#   AUGLOCAL_BUDGETS  training images x epochs, each [2000x3 5000x3]
#   AUGLOCAL_RESULTS  folder for the results         [results]
#   AUGLOCAL_TEST_LIMIT  evaluate on the first N test images only (quick checks) [all 10,000]
#   AUGLOCAL_WIDTH    width multiplier (quick checks) [1]
# Runs already complete are kept; an interrupted run is resumed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# Paths given are taken from the caller's directory; the defaults, and the paths recorded in the
# results, are relative to the repository's root.
runs=${1:+$(realpath -m "$1")}
runs=${runs:-runs/compare}
arch=${AUGLOCAL_ARCH:-resnet32}
budgets=${AUGLOCAL_BUDGETS:-2000x3 5000x3}
results=${AUGLOCAL_RESULTS:+$(realpath -m "$AUGLOCAL_RESULTS")}
results=${results:-results}
bin=${AUGLOCAL_BIN:+$(realpath -m "$AUGLOCAL_BIN")}
bin=${bin:-$root/target/release/auglocal}
cd "$root"
# The commit, described before this script writes its results into the tree.
commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
case $arch in
  resnet32) k=16 depth=2 ;;
  resnet110) k=55 depth=3 ;;
  *) echo "compare-rules: error: AUGLOCAL_ARCH must be resnet32 or resnet110" >&2; exit 2 ;;
esac
# The same for every rule: batch 64, the reference's cosine without warm-up (its last epoch at
# lr 0 refreshes BatchNorm's running statistics, so a budget needs at least 3 epochs), SGD
# momentum 0.9 (Nesterov), weight decay 1e-4, seed 0 (data order and augmentation).
common=(--arch "$arch" --dataset fashion-mnist --batch 64 --lr 0.05 --schedule cosine --warmup 0
  --seed 0 --aux-accuracy --width "${AUGLOCAL_WIDTH:-1}")
[[ -z ${AUGLOCAL_TEST_LIMIT:-} ]] || common+=(--test-limit "$AUGLOCAL_TEST_LIMIT")

if [[ ! -x $bin ]]; then
  cargo build --release -p auglocal-cli
fi
scripts/fetch-data.sh >/dev/null
mkdir -p "$runs" "$results"

dirs=()
for budget in $budgets; do
  images=${budget%x*} epochs=${budget#*x}
  for rule in bp greedy dgl infopro predsim auglocal; do
    dir=$runs/$arch-$images-x$epochs-$rule
    dirs+=("$dir")
    if [[ -f $dir/config.json ]]; then
      echo "compare-rules: $rule, $images images x $epochs epochs: resuming $dir" >&2
      "$bin" train --resume "$dir"
    else
      echo "compare-rules: $rule, $images images x $epochs epochs" >&2
      "$bin" train "${common[@]}" --rule "$rule" --k "$k" --depth "$depth" --pyramid 0.5 \
        --train-limit "$images" --epochs "$epochs" --out "$dir"
    fi
  done
done

name=fashion-mnist-$arch
table=$("$bin" compare "${dirs[@]}" --overwrite --json "$results/$name.json" \
  --plot-budget "$results/$name-budget.png" --plot-heads "$results/$name-heads.png")
{
  echo "# $arch on Fashion-MNIST: backprop against local learning"
  echo
  echo "Made by \`scripts/compare-rules.sh\` (AUGLOCAL_ARCH=$arch, AUGLOCAL_BUDGETS=\"$budgets\")"
  echo "on $(date -u +%Y-%m-%d) (commit $commit),"
  echo "$(nproc) CPU cores, Burn's CPU backend, one run after another."
  echo
  echo "- Data: real Fashion-MNIST, the first N training images (N per row), ${AUGLOCAL_TEST_LIMIT:-all 10,000} test"
  echo "  images; 28x28 grey centred on 32x32 and repeated to 3 channels."
  echo "- Every rule: \`${common[*]}\`; greedy, dgl, infopro and predsim K=$k; auglocal K=$k, d=$depth, pyramid 0.5."
  echo "- Each run repeats with \`auglocal train --config <run>/config.json --out <dir>\`."
  echo
  echo "$table"
  echo
  echo "![test accuracy against budget]($name-budget.png)"
  echo
  echo "![head accuracy by depth]($name-heads.png)"
} >"$results/$name.md"
echo "compare-rules: wrote $results/$name.md, .json and charts" >&2
