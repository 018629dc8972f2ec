#!/usr/bin/env bash
# The soak (issue 16; minutes, so not in scripts/test.sh): SOAK_EXECUTIONS (300) backups
# under `cairn serve` with maxConcurrentJobs 3, SOAK_FAULT_SHARE (0.05) of every S3 and
# DynamoDB operation on the run path failing through tests/src/bin/fault-proxy.rs, and
# SOAK_CANCEL_PERCENT (10) random cancels; then checks that every execution ended, the
# running counter is 0, no multipart upload is left and every Success restores equal to
# its source, and prints the figures. The test is tests/tests/integration/soak.rs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# The target directory CI uses (.ci/run), so the soak builds nothing the tests built.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
bash scripts/install-test-deps.sh >/dev/null
CAIRN_SKIP_INIT=1 bash localstack/start.sh >/dev/null
cargo build --quiet --locked --workspace --bins
start=$(date +%s)
cargo test --quiet --locked -p cairn-tests --test integration -- --ignored --exact soak::soak --nocapture 2>&1 | grep -E '^soak:|panicked|test result|FAILED'
echo "soak: the whole script took $(( $(date +%s) - start )) s"
