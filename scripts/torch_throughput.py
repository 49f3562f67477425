"""The Python side of `edgetune bench-torch`: the same architectures in PyTorch eager mode.

Usage: python torch_throughput.py DEVICE
Reads lines `MODEL BATCH INFERENCES` on stdin and answers each with the seconds the inferences
took, timed as edgetune times its own: random input made on the device once, one untimed
warm-up batch, no_grad, the last batch smaller when needed, a CUDA synchronise before the clock
stops. edgetune embeds this file and runs it, so both sides run on the same machine, interleaved.
"""
import sys
import time

import torch
import torchvision

device = torch.device(sys.argv[1])
builders = {
    "alexnet": torchvision.models.alexnet,
    "resnet18": torchvision.models.resnet18,
    "mobilenet-v2": torchvision.models.mobilenet_v2,
}
models = {}


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize(device)


print(f"ready torch {torch.__version__} threads {torch.get_num_threads()}", flush=True)
for line in sys.stdin:
    name, batch, inferences = line.split()
    batch, inferences = int(batch), int(inferences)
    if name not in models:
        torch.manual_seed(0)
        models[name] = builders[name](weights=None).eval().to(device)
    model = models[name]
    with torch.no_grad():
        x = torch.randn(batch, 3, 224, 224, device=device)
        model(x)
        sync()
        started = time.perf_counter()
        left = inferences
        while left > 0:
            n = min(batch, left)
            model(x if n == batch else x[:n])
            left -= n
        sync()
        elapsed = time.perf_counter() - started
    print(f"{elapsed:.9f}", flush=True)
