#!/usr/bin/env python3
"""Times training steps of the AugLocal reference's own CIFAR ResNets on this CPU.

Imports the networks of a checkout of the reference (github.com/ChenxiangMA/AugLocal, given
with --reference; nothing of it is copied here), builds one as the reference's run.sh and
train.py do (BP: one module; AugLocal: K - d modules whose aux nets sample the following
layers, aux depth d, pyramid coefficient c; DGL: K modules with DGL's heads), and runs its
training step on one batch of random 32x32 images as train.py does: zero the gradients, the
model's forward (which calls backward itself, module by module), the SGD step (Nesterov momentum
0.9, weight decay 1e-4). Prints one JSON line: images/s (the median step's), the step times, and
the settings. scripts/reference-side-by-side.sh calls it next to `auglocal bench`.
"""

import argparse
import json
import statistics
import sys
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", required=True, help="a checkout of ChenxiangMA/AugLocal")
    p.add_argument("--layers", type=int, default=32, choices=[32, 110])
    p.add_argument("--rule", default="AugLocal", choices=["BP", "AugLocal", "DGL"])
    p.add_argument("--k", type=int, default=16, help="local modules (BP: 1)")
    p.add_argument("--depth", type=int, default=2, help="AugLocal's aux depth d")
    p.add_argument("--pyramid", type=float, default=0.5, help="pyramid coefficient; <0: none")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    args = p.parse_args()

    sys.path.insert(0, args.reference)
    import torch  # noqa: E402 (after the thread settings' argument parsing)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    import networks.resnet as reference  # noqa: E402

    # As train.py: AugLocal's aux nets sample the following layers ("unifSamp") and it trains
    # K - d modules; DGL has its own heads; BP is one module.
    k, aux_net_config = {
        "BP": (1, "0c1f"),
        "AugLocal": (args.k - args.depth, "unifSamp"),
        "DGL": (args.k, "DGL"),
    }[args.rule]
    model = getattr(reference, f"resnet{args.layers}")(
        local_module_num=k,
        batch_size=args.batch,
        image_size=32,
        dataset="cifar10",
        class_num=10,
        wide_list=(16, 16, 32, 64),
        dropout_rate=0.0,
        aux_net_config=aux_net_config,
        aux_net_config_aux_loss="0c1f",
        aux_net_widen=1.0,
        aux_net_widen_aux_loss=1.0,
        # run.sh gives DGL 128; AugLocal keeps train.py's default.
        aux_net_feature_dim=128 if args.rule == "DGL" else 1024,
        hidden_dim=512,
        hidden_dim_aux_loss=512,
        rule=args.rule,
        aux_net_depth=args.depth,
        is_pyramid=args.pyramid >= 0,
        paramid_coeff=max(args.pyramid, 0.0),
    )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4
    )
    model.train()
    images = torch.randn(args.batch, 3, 32, 32)
    targets = torch.randint(0, 10, (args.batch,))
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        model(img=images, target=targets, ixx_1=0.0, ixy_1=1.0, ixx_2=0.0, ixy_2=1.0)
        optimizer.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "images_per_second": args.batch / statistics.median(times),
                "step_seconds": times,
                "torch": torch.__version__,
                **{key: value for key, value in vars(args).items() if key != "reference"},
            }
        )
    )


if __name__ == "__main__":
    main()
