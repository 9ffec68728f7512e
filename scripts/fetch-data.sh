#!/usr/bin/env bash
# Fetches the real data that auglocal's tests and demo use into data/ (git-ignored):
#   data/fashion-mnist/  the four official Fashion-MNIST IDX files (.gz), 60,000 + 10,000 images
#   data/foolbox/        20 real CIFAR-10, CIFAR-100, Fashion-MNIST and ImageNet sample images
#                        from the foolbox 3.3.4 wheel (test fixtures are built from them)
# Every file is checked against the official checksums. Running it again checks and does
# nothing more. Usage: scripts/fetch-data.sh [DATA_DIR]   (default: data/ beside scripts/)
# AUGLOCAL_FETCH_SOURCE=official skips Debian's package and downloads Fashion-MNIST from its
# official address (the default, auto, uses the package where apt-get is available).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-${AUGLOCAL_DATA_DIR:-$root/data}}
fmnist_url=${AUGLOCAL_FASHION_MNIST_URL:-http://fashion-mnist.s3-website.eu-central-1.amazonaws.com}
debian_dir=/usr/share/datasets/fashion-mnist
source_pref=${AUGLOCAL_FETCH_SOURCE:-auto}
[[ $source_pref == auto || $source_pref == official ]] ||
  { echo "fetch-data: error: AUGLOCAL_FETCH_SOURCE must be auto or official, got '$source_pref'" >&2; exit 2; }

# MD5 of the decompressed files (Debian recompressed the .gz files; the contents are official).
fmnist_files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A fmnist_md5=(
  [train-images-idx3-ubyte]=f4a8712d7a061bf5bd6d2ca38dc4d50a
  [train-labels-idx1-ubyte]=9018921c3c673c538a1fc5bad174d6f9
  [t10k-images-idx3-ubyte]=8181f5470baa50b63fa0f6fddb340f0a
  [t10k-labels-idx1-ubyte]=15d484375f8d13e6eb1aabb0c3f46965
)
foolbox_version=3.3.4
foolbox_wheel=foolbox-$foolbox_version-py3-none-any.whl
foolbox_sha256=11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb

say() { echo "fetch-data: $*"; }
fail() { echo "fetch-data: error: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

md5_of_gz() { gzip -dc "$1" | md5sum | cut -d' ' -f1; }

# 0 if DIR holds the four .gz files with the official contents.
fmnist_ok() {
  local dir=$1 f
  for f in "${fmnist_files[@]}"; do
    [[ -f $dir/$f.gz ]] || return 1
    [[ $(md5_of_gz "$dir/$f.gz") == "${fmnist_md5[$f]}" ]] || return 1
  done
}

fmnist_verify_or_fail() {
  local dir=$1 f got
  for f in "${fmnist_files[@]}"; do
    [[ -f $dir/$f.gz ]] || fail "$dir/$f.gz is missing after the download"
    got=$(md5_of_gz "$dir/$f.gz")
    [[ $got == "${fmnist_md5[$f]}" ]] ||
      fail "$dir/$f.gz: MD5 of the decompressed file is $got, expected ${fmnist_md5[$f]}"
  done
}

fetch_fmnist() {
  local dest=$data/fashion-mnist tmp f
  if fmnist_ok "$dest"; then
    say "fashion-mnist: present in $dest, checksums OK"
    return
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$dest"
  if [[ $source_pref == auto ]] && fmnist_ok "$debian_dir"; then
    say "fashion-mnist: copying Debian's installed package from $debian_dir"
    cp "$debian_dir"/*.gz "$dest"/
  elif [[ $source_pref == auto ]] && have apt-get && have dpkg-deb; then
    say "fashion-mnist: downloading Debian's dataset-fashion-mnist package"
    if ! (cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null 2>&1); then
      if [[ $(id -u) == 0 ]]; then
        say "fashion-mnist: refreshing the package lists (apt-get update)"
        apt-get update -qq >/dev/null || fail "apt-get update failed; check the network or the apt sources"
      fi
      (cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null) ||
        fail "apt-get download dataset-fashion-mnist failed (as root, run apt-get update first)"
    fi
    dpkg-deb --fsys-tarfile "$tmp"/dataset-fashion-mnist_*.deb | tar -x -C "$tmp" ||
      fail "could not unpack $(ls "$tmp"/*.deb)"
    cp "$tmp/$debian_dir"/*.gz "$dest"/
  else
    say "fashion-mnist: downloading from $fmnist_url"
    for f in "${fmnist_files[@]}"; do
      if have curl; then
        curl -fsSL --connect-timeout 20 --retry 1 -o "$tmp/$f.gz" "$fmnist_url/$f.gz" ||
          fail "could not download $fmnist_url/$f.gz (curl exit $?); put the four Fashion-MNIST .gz files in $dest yourself"
      elif have wget; then
        wget -q --timeout=20 -O "$tmp/$f.gz" "$fmnist_url/$f.gz" ||
          fail "could not download $fmnist_url/$f.gz; put the four Fashion-MNIST .gz files in $dest yourself"
      else
        fail "neither apt-get, curl nor wget is available to fetch Fashion-MNIST"
      fi
    done
    cp "$tmp"/*.gz "$dest"/
  fi
  fmnist_verify_or_fail "$dest"
  say "fashion-mnist: $dest ready, checksums OK"
}

fetch_foolbox() {
  local dest=$data/foolbox stamp tmp wheel got
  stamp=$dest/.source-sha256
  if [[ -f $stamp && $(cat "$stamp") == "$foolbox_sha256" ]] &&
    [[ $(find "$dest" -name 'cifar10_*.png' | wc -l) == 20 ]]; then
    say "foolbox samples: present in $dest, from the verified wheel"
    return
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  have python3 || fail "python3 is needed to fetch and unpack the foolbox wheel"
  say "foolbox samples: downloading $foolbox_wheel from PyPI"
  python3 -m pip download --quiet --no-deps --only-binary=:all: "foolbox==$foolbox_version" -d "$tmp" ||
    fail "pip could not download foolbox==$foolbox_version (is pip installed and PyPI reachable?)"
  wheel=$tmp/$foolbox_wheel
  [[ -f $wheel ]] || fail "pip did not produce $foolbox_wheel"
  got=$(sha256sum "$wheel" | cut -d' ' -f1)
  [[ $got == "$foolbox_sha256" ]] || fail "$foolbox_wheel: SHA-256 is $got, expected $foolbox_sha256"
  rm -rf "$dest"
  mkdir -p "$dest"
  python3 - "$wheel" "$dest" <<'PY' || fail "could not unpack the sample images from the wheel"
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("foolbox/data/") and n.endswith((".png", ".jpg"))]
    for n in names:
        with open(os.path.join(dest, os.path.basename(n)), "wb") as f:
            f.write(z.read(n))
print(f"fetch-data: foolbox samples: {len(names)} images unpacked")
PY
  echo "$foolbox_sha256" >"$stamp"
  say "foolbox samples: $dest ready"
}

mkdir -p "$data"
fetch_fmnist
fetch_foolbox
say "done: $data"
