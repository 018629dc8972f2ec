#!/usr/bin/env bash
# Prints each function's stripped binary size and its cold start (process start to first
# response under tests/src/bin/lambda-emulator, a Lambda Runtime API), median of 5 starts.
#
#   bash scripts/runtime-figures.sh
#
# Sizes: the arm64 bootstraps of scripts/lambda-build.sh when present, and the x86_64
# binaries built with the same profiles (run, poll, list: `lambda-api`; manage, runner:
# `release`). Cold starts are measured here on x86_64 with those binaries: `/api/health`
# (no AWS call), and real run/poll/list events against the local DynamoDB endpoint.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
CAIRN_SKIP_INIT=1 bash localstack/start.sh >/dev/null
cargo build --quiet --profile lambda-api -p cairn-run -p cairn-poll -p cairn-list --bins
cargo build --quiet --release -p cairn-manage -p cairn-runner -p cairn-cli -p cairn-tests --bins
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
rel="$target/release"
bin() { case "$1" in run | poll | list) echo "$target/lambda-api/cairn-$1" ;; *) echo "$rel/cairn-$1" ;; esac; }
export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export CAIRN_TABLE_PREFIX="figures$(date +%s)" CAIRN_BUCKET="figures-$(date +%s)" RUST_LOG=warn
"$rel/cairn" init >/dev/null
key=$("$rel/cairn" --output json keys create --name figures --permissions all | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
dest=$("$rel/cairn" --output json destinations create --name d --bucket "$CAIRN_BUCKET" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "{\"name\":\"figures\",\"items\":[{\"name\":\"c\",\"source\":{\"kind\":\"config\"}}],\"destinations\":[\"$dest\"]}" > /tmp/cairn-figures-job.json
job=$("$rel/cairn" --output json jobs create --file /tmp/cairn-figures-job.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
exe=$("$rel/cairn" --output json jobs run "$job" | python3 -c 'import json,sys; print(json.load(sys.stdin)["executionId"])')
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fixture() { sed -e "s/API_KEY/$key/; s/JOB_ID/$job/g; s/EXECUTION_ID/$exe/g" "tests/fixtures/$1" > "$tmp/$1"; echo "$tmp/$1"; }
cold() {
    local bin="$1" event="$2"
    for _ in 1 2 3 4 5; do
        AWS_LAMBDA_FUNCTION_NAME="$(basename "$bin")" "$rel/lambda-emulator" "$event" -- "$bin" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.1f" % r["coldStartMs"])'
    done | sort -n | sed -n 3p
}
printf '%-8s %14s %14s %18s %18s\n' function "arm64 bytes" "x86_64 bytes" "cold /api/health" "cold real event"
for f in run poll list manage runner; do
    arm="$target/lambda/cairn-$f/bootstrap"
    arm_size=$([ -f "$arm" ] && stat -c %s "$arm" || echo "-")
    x86_size=$(stat -c %s "$(bin "$f")")
    health="-"; real="-"
    case "$f" in
        list) health=$(cold "$(bin list)" "$(fixture apigw-health.json)"); real=$(cold "$(bin list)" "$(fixture apigw-list.json)") ;;
        run) real=$(cold "$(bin run)" "$(fixture apigw-run.json)") ;;
        poll) real=$(cold "$(bin poll)" "$(fixture apigw-poll.json)") ;;
    esac
    printf '%-8s %14s %14s %15s ms %15s ms\n' "$f" "$arm_size" "$x86_size" "$health" "$real"
done

# The runner image's tools. With a Docker engine, from the image itself (built from
# functions/runner/ when scripts/lambda-build.sh left the bootstraps in dist/); without one
# (these machines), the versions functions/runner/Dockerfile pins.
echo
echo "runner image tools (functions/runner/Dockerfile):"
if docker info >/dev/null 2>&1 && [ -x functions/runner/dist/runner ]; then
    docker build --quiet --platform linux/arm64 -t cairn-runner-figures functions/runner >/dev/null
    docker run --rm --platform linux/arm64 --entrypoint /bin/sh cairn-runner-figures -c \
        'pg_dump --version; pg_restore --version; psql --version; mysqldump --version; mysql --version; tar --version | head -1'
else
    echo "  (no Docker engine here: the pinned Debian packages, not the built image)"
    sed -n 's/^ *\([a-z0-9-]*\)=\([^ ]*\) *\\\{0,1\}$/  \1 \2/p' functions/runner/Dockerfile
fi
