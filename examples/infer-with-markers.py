#!/usr/bin/env python3
"""A workload for `edgetune tune --workload-cmd`: runs N inferences of a torchvision model at a
batch size and prints EDGETUNE_BEGIN / EDGETUNE_END around the timed part, so model loading and
CUDA start-up are not measured.

    edgetune tune --model resnet18 \
        --workload-cmd 'python3 examples/infer-with-markers.py --model {model} --batch {batch} --count {inferences}'

Replace the body with your own program (TensorRT, ONNX Runtime, DeepStream...): what matters is
the two marker lines on stdout, flushed when they happen.
"""
import argparse
import sys
import time

MODELS = {"resnet18": "resnet18", "alexnet": "alexnet", "mobilenet-v2": "mobilenet_v2"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--count", type=int, default=3200)
    a = ap.parse_args()
    import torch
    import torchvision

    if a.model not in MODELS:
        sys.exit(f"this example knows {', '.join(MODELS)}; got {a.model}")
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    net = getattr(torchvision.models, MODELS[a.model])(weights=None).eval().to(dev)
    x = torch.randn(a.batch, 3, 224, 224, device=dev)
    batches = -(-a.count // a.batch)
    with torch.no_grad():
        net(x)  # warm-up: kernels chosen, memory allocated
        if dev == "cuda":
            torch.cuda.synchronize()
        print("EDGETUNE_BEGIN", flush=True)
        t0 = time.perf_counter()
        for _ in range(batches):
            net(x)
        if dev == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter() - t0
        print("EDGETUNE_END", flush=True)
    print(f"{batches * a.batch / t:.1f} inferences/s on {dev}", file=sys.stderr)


if __name__ == "__main__":
    main()
