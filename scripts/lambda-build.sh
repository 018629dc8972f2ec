#!/usr/bin/env bash
# Builds every function for Lambda (provided.al2023, arm64) with cargo-lambda, installed
# from PyPI with its zig linker into .tools/cargo-lambda, and checks that each function
# has its bootstrap: target/lambda/cairn-<function>/bootstrap.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.tools/cargo-lambda"
. "$root/scripts/lib/pip-tool.sh"
pip_tool "$venv" "cargo-lambda==1.9.2" cargo-lambda
export PATH="$venv/bin:$PATH"
functions=(run poll list manage runner)
args=()
for f in "${functions[@]}"; do args+=(-p "cairn-$f"); done
cargo lambda build --release --arm64 --bins "${args[@]}"
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
for f in "${functions[@]}"; do
    b="$target/lambda/cairn-$f/bootstrap"
    [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }
    file "$b" 2>/dev/null | grep -q "ARM aarch64" || { echo "$b is not an arm64 executable: $(file "$b")" >&2; exit 1; }
    echo "built $b ($(stat -c %s "$b") bytes)"
done
