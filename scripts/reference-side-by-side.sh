#!/usr/bin/env bash
# auglocal against the PyTorch reference on this CPU, side by side: the reference's own
# networks and training step (scripts/reference_step.py, importing a checkout of
# github.com/ChenxiangMA/AugLocal) and `auglocal bench`, on the same batch of random 32x32
# images, the same batch size and threads, interleaved round by round; medians of the rounds.
#
#   scripts/reference-side-by-side.sh REFERENCE_CHECKOUT [OUT.md]
#
# Settings (environment): LAYERS (default "32"; "32 110" adds ResNet-110 K=55 d=3), THREADS
# (default "2"; "1 2" adds one thread), BATCH (128), ROUNDS (3), STEPS (5, after 1 warm-up).
# torch comes from PyPI into a virtual environment outside the repository
# ($AUGLOCAL_REFERENCE_VENV, default ~/.cache/auglocal/reference-venv). Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."

reference=${1:?usage: $0 REFERENCE_CHECKOUT [OUT.md]}
out=${2:-}
[[ -f "$reference/networks/resnet.py" ]] || {
  echo "$reference is not a checkout of ChenxiangMA/AugLocal (no networks/resnet.py)" >&2
  exit 2
}
reference=$(cd "$reference" && pwd)
layers=${LAYERS:-32}
threads_list=${THREADS:-2}
batch=${BATCH:-128}
rounds=${ROUNDS:-3}
steps=${STEPS:-5}

venv=${AUGLOCAL_REFERENCE_VENV:-$HOME/.cache/auglocal/reference-venv}
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "installing torch into $venv (PyPI)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch numpy
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/auglocal/target}
cargo build --release -q -p auglocal-cli
bin="$CARGO_TARGET_DIR/release/auglocal"

# One measurement, images/s: the reference's (ref) or auglocal's (ours).
measure() { # tool layers rule threads
  local tool=$1 n=$2 rule=$3 t=$4 k=16 d=2
  [[ $n == 110 ]] && k=55 && d=3
  if [[ $tool == ref ]]; then
    local ref_rule=BP
    [[ $rule == auglocal ]] && ref_rule=AugLocal
    OMP_NUM_THREADS=$t "$venv/bin/python" scripts/reference_step.py --reference "$reference" \
      --layers "$n" --rule "$ref_rule" --k "$k" --depth "$d" --pyramid 0.5 --batch "$batch" \
      --threads "$t" --steps "$steps" --warmup 1
  else
    local flags=(--rules "$rule")
    [[ $rule == auglocal ]] && flags+=(--k "$k" --depth "$d" --pyramid 0.5)
    "$bin" bench --arch "resnet$n" "${flags[@]}" --batch "$batch" --steps "$steps" --warmup 1 \
      --threads "$t" --json
  fi | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
print(r["images_per_second"] if "images_per_second" in r else r["results"][0]["images_per_second"])'
}

median() { python3 -c 'import statistics, sys; print(statistics.median(map(float, sys.argv[1:])))' "$@"; }

table="| network | rule | threads | reference img/s | auglocal img/s | ratio | rounds |
|---|---|---:|---:|---:|---:|---:|"
for n in $layers; do
  for t in $threads_list; do
    for rule in bp auglocal; do
      ref=() ours=()
      for ((r = 1; r <= rounds; r++)); do
        ref+=("$(measure ref "$n" "$rule" "$t")")
        ours+=("$(measure ours "$n" "$rule" "$t")")
        echo "resnet$n $rule threads $t round $r: reference ${ref[-1]}, auglocal ${ours[-1]}" >&2
      done
      a=$(median "${ref[@]}") b=$(median "${ours[@]}")
      row=$(python3 -c "import sys; a, b = map(float, sys.argv[1:]); print(f'{a:.1f} | {b:.1f} | {b / a:.2f}x')" "$a" "$b")
      table+="
| ResNet-$n | $rule | $t | $row | $rounds |"
    done
  done
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
torch_version=$("$venv/bin/python" -c "import torch; print(torch.__version__)")
report="Side by side on $cpu ($(nproc) cores), batch $batch, medians of $rounds rounds of
$steps steps (after 1 warm-up), random 32x32 images; the reference's networks and training
step (torch $torch_version) against \`auglocal bench\`, interleaved. AugLocal: ResNet-32 K=16
d=2, ResNet-110 K=55 d=3, pyramid 0.5 (the reference's run.sh with d=2 for ResNet-32).

$table"
echo "$report"
if [[ -n $out ]]; then
  echo "$report" >"$out"
fi
