#!/usr/bin/env bash
# Runs every test of the project on a fresh machine:
#   1. installs what tests need (scripts/install-test-deps.sh, idempotent),
#   2. brings up the local S3/DynamoDB endpoint (localstack/start.sh) unless one answers,
#   3. checks the library's shape (scripts/check-architecture.py), lints template.yaml
#      with cfn-lint and checkov and the runner's Dockerfile with hadolint,
#   4. builds the binaries and runs `cargo test --workspace` (unit tests and the
#      integration tests that drive the real binaries over HTTP, the console's in
#      headless Chromium), then schemathesis against openapi.yaml (scripts/schemathesis.sh),
#   5. builds every function for Lambda (arm64) and checks each has its bootstrap
#      (scripts/lambda-build.sh; skip with CAIRN_SKIP_LAMBDA_BUILD=1 when iterating).
# An endpoint this script started is stopped again at the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-test-deps.sh

started_endpoint=0
if ! (exec 3<>/dev/tcp/127.0.0.1/4566) 2>/dev/null; then
    CAIRN_SKIP_INIT=1 bash localstack/start.sh
    started_endpoint=1
fi
cleanup() {
    if [ "$started_endpoint" = 1 ]; then bash localstack/stop.sh || true; fi
}
trap cleanup EXIT

echo "== architecture (function and file lengths, layer imports, SDK confinement)"
python3 scripts/check-architecture.py

echo "== cfn-lint template.yaml (as it is, and with the VPC, EFS and Fargate parameters set)"
.tools/venv/bin/cfn-lint template.yaml
.tools/venv/bin/cfn-lint template.yaml --parameters \
    VpcSubnets=subnet-0123456789abcdef0,subnet-0fedcba9876543210 VpcSecurityGroups=sg-0123456789abcdef0 \
    EfsAccessPointArn=arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-0123456789abcdef0 \
    EfsFileSystemId=fs-0123456789abcdef0 RunnerImageUri=123456789012.dkr.ecr.us-east-1.amazonaws.com/cairn:runner

echo "== checkov template.yaml (each skipped check carries its reason in the template)"
# --skip-download: no guideline download (this network reaches only package registries).
.tools/checkov/bin/checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download

echo "== hadolint functions/runner/Dockerfile"
.tools/hadolint/bin/hadolint functions/runner/Dockerfile

echo "== cargo build"
cargo build --locked --workspace --bins

seeds="${CAIRN_SEEDS_DIR:-$root/../shared/seeds}"
if [ ! -f "$seeds/dbackup-webhook-api.txt" ] || [ ! -f "$seeds/jetbackup-hooks.txt" ]; then
    echo "note: the seed documents are not in $seeds: the tests that run the seeds' published clients and hook samples skip (set CAIRN_SEEDS_DIR to run them)"
fi

echo "== cargo test"
cargo test --locked --workspace -- --test-threads "${CAIRN_TEST_THREADS:-6}"

echo "== schemathesis: openapi.yaml against cairn serve, every check"
bash scripts/schemathesis.sh

if [ "${CAIRN_SKIP_LAMBDA_BUILD:-0}" != 1 ]; then
    echo "== cargo lambda build --release --arm64"
    bash scripts/lambda-build.sh
fi
