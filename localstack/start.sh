#!/usr/bin/env bash
# Bring up the local AWS endpoint (S3 + DynamoDB) on 127.0.0.1:4566, idempotently.
#
# With a Docker engine: LocalStack through docker-compose.yml beside this file.
# Without one (our machines, CI): moto's server, pinned, installed into a venv inside
# the project (localstack/.venv, ignored by git) and started in the background.
#
# Then, unless CAIRN_SKIP_INIT=1, it creates Cairn's tables and bucket with `cairn init`
# (the same definitions template.yaml uses).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
port="${CAIRN_LOCAL_PORT:-4566}"
endpoint="http://127.0.0.1:${port}"
state="$here/.state"
venv="$here/.venv"
moto_version="5.2.5"
# moto computes CRC64NVME checksums (which Cairn's uploads use) only with awscrt installed.
awscrt_version="0.38.1"
mkdir -p "$state"

endpoint_answers() {
    # An S3/DynamoDB-compatible endpoint answers a ListBuckets-shaped GET with XML.
    curl -s -o /dev/null -m 2 -w '%{http_code}' "$endpoint/" 2>/dev/null | grep -qE '^(200|403)$'
}

port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null
}

wait_ready() {
    for _ in $(seq 1 100); do
        if endpoint_answers; then return 0; fi
        sleep 0.1
    done
    echo "localstack/start.sh: the endpoint on $endpoint did not come up; see $state/moto.log" >&2
    return 1
}

if endpoint_answers; then
    echo "local AWS endpoint already running on $endpoint"
elif port_taken; then
    echo "localstack/start.sh: port ${port} is taken by something that is not an S3/DynamoDB endpoint; stop it or set CAIRN_LOCAL_PORT" >&2
    exit 1
elif docker info >/dev/null 2>&1 && [ "${CAIRN_FORCE_MOTO:-0}" != 1 ]; then
    echo "starting LocalStack with docker compose"
    LOCALSTACK_PORT="$port" docker compose -f "$here/docker-compose.yml" up -d
    wait_ready
    echo docker > "$state/kind"
else
    . "$root/scripts/lib/pip-tool.sh"
    pip_tool "$venv" "moto[server]==$moto_version awscrt==$awscrt_version" moto_server
    echo "starting moto server on $endpoint"
    nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$state/moto.log" 2>&1 &
    echo $! > "$state/moto.pid"
    echo moto > "$state/kind"
    wait_ready
fi

if [ "${CAIRN_SKIP_INIT:-0}" != 1 ]; then
    export AWS_ENDPOINT_URL="$endpoint"
    export AWS_REGION="${AWS_REGION:-us-east-1}"
    export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
    export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
    (cd "$root" && cargo run --quiet --bin cairn -- init)
fi
