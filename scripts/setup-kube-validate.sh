#!/usr/bin/env bash
# The Kubernetes schema validator the tests check deploy/kubernetes/*.yaml with:
# kubernetes-validate from PyPI (it ships the API schemas: no cluster, no network at test time),
# installed once into a venv outside the repository ($EDGETUNE_KUBE_VENV, default
# ${XDG_CACHE_HOME:-~/.cache}/edgetune/kubernetes-validate-1.37.0).
# Usage: eval "$(./scripts/setup-kube-validate.sh)"   prints `export EDGETUNE_KUBE_VALIDATE=...`
set -euo pipefail
version=1.37.0
venv="${EDGETUNE_KUBE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/edgetune/kubernetes-validate-$version}"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "installing kubernetes-validate $version into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q "kubernetes-validate==$version" >&2
fi
echo "export EDGETUNE_KUBE_VALIDATE=$venv/bin/kubernetes-validate"
