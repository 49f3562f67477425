#!/usr/bin/env bash
# Provides libtorch for the `torch` feature without any crate downloading anything: creates, once,
# a Python venv holding the PyPI wheel torch==2.11.0 (the version tch 0.24 binds) and torchvision
# (the Python side of `edgetune bench-torch`), then prints the variables cargo needs.
#
#   eval "$(./scripts/setup-torch.sh)"
#   cargo build --release --features torch
#
# The venv lives outside the repository: $EDGETUNE_TORCH_VENV, default
# ${XDG_CACHE_HOME:-~/.cache}/edgetune/torch-2.11.0. Progress goes to stderr; only `export`
# lines go to stdout.
set -euo pipefail

torch_version=2.11.0
torchvision_version=0.26.0
venv="${EDGETUNE_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/edgetune/torch-$torch_version}"
python="${PYTHON:-python3}"

installed() {
  "$venv/bin/python" - "$torch_version" <<'PY' 2>/dev/null
import sys, torch, torchvision
sys.exit(torch.__version__.split("+")[0] != sys.argv[1])
PY
}

if ! installed; then
  echo "setup-torch: installing torch==$torch_version into $venv (once; about 4 GB with its CUDA libraries)" >&2
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "torch==$torch_version" "torchvision==$torchvision_version" >&2
  installed || { echo "setup-torch: torch $torch_version did not import from $venv" >&2; exit 1; }
fi

torch_lib="$("$venv/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
echo "setup-torch: using $venv (libtorch in $torch_lib)" >&2
# torch-sys asks this python for libtorch's folder and C++ ABI; build.rs sets the run-time path.
echo "export LIBTORCH_USE_PYTORCH=1"
echo "export PATH=\"$venv/bin:\$PATH\""
echo "export EDGETUNE_TORCH_PYTHON=\"$venv/bin/python\""
