#!/usr/bin/env bash
# Every check the project has: formatting, lints with warnings denied (default features, which
# build on a Jetson, and the `torch` feature), and all tests including the built-in models on the
# CPU, the storages against a real PostgreSQL server (started here, stopped on exit), the
# Kubernetes manifest against the API's schemas and the dashboard in Debian's chromium (installed
# here when missing). The torch tests need libtorch: scripts/setup-torch.sh installs the PyPI wheel once into a
# cache folder outside the repository (about 4 GB; $EDGETUNE_TORCH_VENV to move it).
# Usage: ./scripts/test.sh   (from anywhere; runs in the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "installing the $component component" >&2
    rustup component add "$component"
  fi
done

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy, default features (warnings denied)" >&2
cargo clippy --all-targets --locked -- -D warnings
echo "== libtorch for the torch feature (scripts/setup-torch.sh)" >&2
eval "$(./scripts/setup-torch.sh)"
echo "== cargo clippy --features torch (warnings denied)" >&2
cargo clippy --all-targets --locked --features torch -- -D warnings
echo "== the Kubernetes schema validator (scripts/setup-kube-validate.sh)" >&2
eval "$(./scripts/setup-kube-validate.sh)"
echo "== Debian's chromium for the dashboard's browser tests (scripts/setup-chromium.sh)" >&2
eval "$(./scripts/setup-chromium.sh)"
echo "== a throw-away PostgreSQL server for the storage tests (scripts/postgres.sh)" >&2
eval "$(./scripts/postgres.sh start)"
trap './scripts/postgres.sh stop "$EDGETUNE_PG_DIR"' EXIT
export EDGETUNE_REQUIRE_POSTGRES=1 EDGETUNE_REQUIRE_KUBE_VALIDATE=1 EDGETUNE_REQUIRE_CHROMIUM=1
echo "== cargo test --features torch" >&2
cargo test --all-targets --locked --features torch
