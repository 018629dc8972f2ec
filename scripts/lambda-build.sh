#!/usr/bin/env bash
# Builds every function for Lambda (provided.al2023, arm64) with cargo-lambda, installed
# from PyPI with its zig linker, and checks that each function has its bootstrap:
# target/lambda/cairn-<function>/bootstrap. The runner's and manage's are also copied to
# functions/runner/dist/ (runner, manage): the runner image's build context. cargo-lambda lives outside the clone
# (~/.cache/cairn/tools, or CAIRN_TOOLS_DIR): its linker's path is part of what cargo
# fingerprints, so one fixed place lets every clone reuse the arm64 build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${CAIRN_TOOLS_DIR:-$HOME/.cache/cairn/tools}/cargo-lambda"
. "$root/scripts/lib/pip-tool.sh"
pip_tool "$venv" "cargo-lambda==1.9.2" cargo-lambda
export PATH="$venv/bin:$PATH"
functions=(run poll list manage runner)
# run, poll and list answer requests only (no S3, no engine) and are built for size;
# manage and the runner for speed. See [profile.lambda-api] in Cargo.toml.
cargo lambda build --locked --profile lambda-api --arm64 --bins -p cairn-run -p cairn-poll -p cairn-list
cargo lambda build --locked --release --arm64 --bins -p cairn-manage -p cairn-runner
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
for f in "${functions[@]}"; do
    b="$target/lambda/cairn-$f/bootstrap"
    [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }
    file "$b" 2>/dev/null | grep -q "ARM aarch64" || { echo "$b is not an arm64 executable: $(file "$b")" >&2; exit 1; }
    size=$(stat -c %s "$b")
    echo "built $b ($size bytes)"
    # Issue 6's goal for the request-only functions: under 10 MB stripped.
    case "$f" in run | poll | list)
        [ "$size" -lt 10000000 ] || { echo "$b is $size bytes; run, poll and list must stay under 10 MB" >&2; exit 1; } ;;
    esac
done

# The runner image (functions/runner/Dockerfile) holds the runner and manage bootstraps.
mkdir -p functions/runner/dist
cp "$target/lambda/cairn-runner/bootstrap" functions/runner/dist/runner
cp "$target/lambda/cairn-manage/bootstrap" functions/runner/dist/manage
echo "copied the runner and manage bootstraps to functions/runner/dist/ (the image's build context)"
