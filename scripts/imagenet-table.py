#!/usr/bin/env python3
"""The ImageNet-scale memory table of the README from scripts/imagenet-bench.sh's JSON.

Usage: scripts/imagenet-table.py DIR   (reads DIR/bench-<arch>-b<batch>.json, prints Markdown)

For each network and rule it fits peak heap = F + P * batch through the two smallest batches
measured (F: weights, gradients, momentum and fixed buffers; P: activations per image) and
reports where AugLocal's and DGL's lines cross backprop's, and what the fit predicts at any
larger batch measured (a check of the model) and at 128 (the paper's batch per GPU).
"""
import glob
import json
import os
import re
import sys

MIB = 1 << 20
SETTINGS = {"resnet34": "K=17 d=4", "resnet101": "K=34 d=3", "vgg13": "K=10 d=2"}

runs = {}
for path in glob.glob(os.path.join(sys.argv[1], "bench-*-b*.json")):
    arch, batch = re.match(r"bench-(.+)-b(\d+)\.json", os.path.basename(path)).groups()
    with open(path) as f:
        report = json.load(f)
    runs.setdefault(arch, {})[int(batch)] = {
        r["rule"]: (r["peak_heap_bytes"] / MIB, r["images_per_second"]) for r in report["results"]
    }

print("| network | batch | bp MiB (img/s) | AugLocal MiB (img/s) | vs bp | DGL MiB (img/s) | vs bp |")
print("|---|---:|---:|---:|---:|---:|---:|")
for arch in SETTINGS:
    for batch in sorted(runs.get(arch, {})):
        r = runs[arch][batch]
        bp, al, dgl = r["bp"], r["auglocal"], r["dgl"]
        print(
            f"| {arch} {SETTINGS[arch]} | {batch} | {bp[0]:.0f} ({bp[1]:.1f}) | {al[0]:.0f} "
            f"({al[1]:.1f}) | {al[0] / bp[0]:.2f}x | {dgl[0]:.0f} ({dgl[1]:.1f}) | "
            f"{dgl[0] / bp[0]:.2f}x |"
        )
print()
print("| network | rule | fixed F MiB | per image P MiB | crossover batch | checks: predicted vs measured | at 128 |")
print("|---|---|---:|---:|---:|---|---:|")
for arch in SETTINGS:
    batches = sorted(runs.get(arch, {}))
    if len(batches) < 2:
        continue
    b0, b1 = batches[:2]

    def fit(rule):
        p = (runs[arch][b1][rule][0] - runs[arch][b0][rule][0]) / (b1 - b0)
        return runs[arch][b0][rule][0] - p * b0, p

    fb, pb = fit("bp")
    for rule in ("auglocal", "dgl"):
        f, p = fit(rule)
        if p < pb and f > fb:
            cross = f"{(f - fb) / (pb - p):.0f}"
        elif f <= fb and p <= pb:
            cross = "below at every batch"
        else:
            cross = "never"
        checks = []
        for b in batches[2:]:
            measured = runs[arch][b][rule][0] / runs[arch][b]["bp"][0]
            checks.append(f"{b}: {(f + p * b) / (fb + pb * b):.2f}x vs {measured:.2f}x")
        at128 = (f + p * 128) / (fb + pb * 128)
        print(
            f"| {arch} | {rule} | {f:.0f} | {p:.1f} (bp {pb:.1f}) | {cross} | "
            f"{'; '.join(checks) or '-'} | {at128:.2f}x |"
        )
