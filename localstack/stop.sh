#!/usr/bin/env bash
# Stop the local AWS endpoint that start.sh brought up (only ours: by its pid or compose file).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state="$here/.state"
kind="$(cat "$state/kind" 2>/dev/null || true)"
case "$kind" in
    docker)
        docker compose -f "$here/docker-compose.yml" down
        ;;
    moto)
        pid="$(cat "$state/moto.pid" 2>/dev/null || true)"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            echo "stopped moto server (pid $pid)"
        else
            echo "moto server was not running"
        fi
        ;;
    *)
        echo "nothing to stop"
        ;;
esac
rm -f "$state/kind" "$state/moto.pid"
