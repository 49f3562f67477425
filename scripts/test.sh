#!/usr/bin/env bash
# Every check the project has: formatting, lints with warnings denied, and all tests.
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
echo "== cargo clippy (warnings denied)" >&2
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test" >&2
cargo test --all-targets --locked
