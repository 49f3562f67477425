"""Counts what each built-in model costs and records it in models/*.toml.

Usage: python count-macs.py DIR
DIR holds <model>.pt for every model with a [built] section, as saved by
`edgetune infer --model <model> --batch 1 --save-torchscript DIR/<model>.pt` (scripts/count-macs.sh
does both steps). For each, one inference of the model's own input runs under PyTorch's
FlopCounterMode, which counts the matrix products of convolutions, linear layers and attention;
multiply-accumulates are half its FLOPs. The `macs = N` line of the [built] section is rewritten
in place. (The traced files hold the weights as constants, so parameters are counted on the Rust
side: the torch tests check `params`.)
"""
import pathlib
import re
import sys
import tomllib

import torch
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_flop

# On the CPU, scaled_dot_product_attention runs this kernel, which FlopCounterMode does not
# know; its cost is that of the other attention kernels.
register_flop_formula(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu, get_raw=True)(
    sdpa_flop
)

root = pathlib.Path(__file__).resolve().parent.parent
exported = pathlib.Path(sys.argv[1])
for path in sorted((root / "models").glob("*.toml")):
    text = path.read_text()
    spec = tomllib.loads(text)
    built = spec.get("built")
    if built is None:
        continue
    model_id = spec["model"]["id"]
    module = torch.jit.load(str(exported / f"{model_id}.pt")).eval()
    if "encoder" in built:
        enc = built["encoder"]
        x = torch.randint(enc["vocab"], (1, enc["sequence_length"]))
    else:
        x = torch.randn(1, *built["input_shape"])
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    by_op = {str(op): n // 2 for op, n in counter.get_flop_counts()["Global"].items()}
    macs = counter.get_total_flops() // 2
    paper = spec["paper"]
    print(
        f"{model_id:<13} MACs {macs / 1e9:8.4f} G"
        f"  = {2 * macs / 1e9:8.4f} GFLOPs  (paper {paper['gflops']} 'GFLOPs')  by op: {by_op}"
    )
    new, n = re.subn(r"(?m)^macs = \d+$", f"macs = {macs}", text)
    if n != 1:
        sys.exit(f"{path.name}: expected one `macs = N` line")
    path.write_text(new)
