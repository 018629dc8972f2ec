#!/usr/bin/env bash
# Cairn's backup throughput against what a user would do instead, on the same data and
# the same S3 endpoint. Prints its figures; rerun it anywhere:
#
#   bash bench/backup.sh [SCALE]        # SCALE 1 = about 1.1 GiB (default)
#
# (a) Cairn through `cairn serve` (release build): input bytes / execution duration,
#     the peak resident memory of the server process and its CPU time per run
# Each is run CAIRN_BENCH_RUNS times (3) on a warm page cache; the median is reported.
# (b) tar -c | zstd -3 > /dev/null            the compute ceiling
# (c) tar -c | zstd -3 | aws s3 cp - s3://...  what a user would script
# (d) restic backup to the same endpoint
# (h) a restore of (a)'s last backup through the API into a new directory (one pass:
#     staged beside the target, SHA-256 checked as it streams, moved into place)
# (i) aws s3 cp s3://.../data.tar.zst - | zstd -d | tar -x    what a user would script
# (e) a first incremental backup (a job with "incremental": true: a restic repository),
# (f) a second with nothing changed, (g) a third after 1% of the files changed and 10 MiB
#     were appended to the largest; and restic 0.14 doing the same three into its own
#     repository. Each on a copy of the data set, with time, bytes read (the process's
#     rchar: what it read from files and sockets) and bytes uploaded (the growth of the
#     repository in the bucket).
#
# On two cores or more, Cairn and its alternatives run pinned to core 0 and the S3 and
# DynamoDB endpoints to core 1 (CAIRN_BENCH_PIN=0 turns this off), so each contender has
# one core and the endpoints do not take it from them.
#
# S3 is served by bench-s3 (tests/src/bin/bench-s3.rs: a small S3 endpoint that keeps
# objects in memory and checks the MD5s and CRCs clients send, as S3 does) through
# AWS_ENDPOINT_URL_S3; DynamoDB by the usual local endpoint (moto).
# Every run, (a) to (d), writes to the same endpoint, which shares the machine's cores.
# CAIRN_BENCH_S3=s3s-fs uses s3s-fs 0.14.1 from crates.io instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scale="${1:-1}"
work="${CAIRN_BENCH_DIR:-$root/.tools/bench}"
data="$work/data"
s3port=8014
s3dir="$work/s3"
server="${CAIRN_BENCH_S3:-bench-s3}"
mkdir -p "$work" "$data" "$s3dir"

echo "== preparing tools"
bash scripts/install-test-deps.sh >/dev/null
if ! command -v restic >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic >/dev/null
fi
. scripts/lib/pip-tool.sh
pip_tool "$root/.tools/bench-venv" "awscli==1.36.40" aws
cargo build --quiet --release --bin cairn --bin bench-s3
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
cairn_bin="$target/release/cairn"

echo "== data set (scale $scale)"
python3 bench/make_dataset.py "$data" "$scale"
input_bytes=$(du -sb --apparent-size "$data" | cut -f1)
files=$(find "$data" -type f ! -name '.complete-*' | wc -l)
echo "$files files, $input_bytes bytes"

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    # The local endpoint outlives the benchmark: give it every core back.
    taskset -a -p -c "0-$(( $(nproc) - 1 ))" "$(cat localstack/.state/moto.pid 2>/dev/null || echo 0)" >/dev/null 2>&1 || true
    rm -rf "${s3dir:?}"/*
}
trap cleanup EXIT

CAIRN_SKIP_INIT=1 bash localstack/start.sh >/dev/null
rm -rf "${s3dir:?}"/*
if [ "$server" = s3s-fs ]; then
    .tools/s3s-fs/bin/s3s-fs --host 127.0.0.1 --port $s3port --access-key "$AWS_ACCESS_KEY_ID" --secret-key "$AWS_SECRET_ACCESS_KEY" "$s3dir" >"$work/s3.log" 2>&1 &
else
    "$target/release/bench-s3" --port $s3port >"$work/s3.log" 2>&1 &
fi
pids+=($!)
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$s3port) 2>/dev/null && break; sleep 0.1; done
s3="http://127.0.0.1:$s3port"
aws() { .tools/bench-venv/bin/aws --endpoint-url "$s3" "$@"; }
aws s3 mb s3://bench >/dev/null

# Pinning: `"${on_work[@]}" CMD...` runs CMD on the contenders' core (taskset execs CMD,
# so a background job's $! is CMD's own pid).
if [ "${CAIRN_BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
    pinned=1
    on_work=(taskset -c 0)
    for p in "${pids[@]}" $(cat localstack/.state/moto.pid 2>/dev/null); do taskset -a -p -c 1 "$p" >/dev/null 2>&1 || true; done
else
    pinned=0
    on_work=()
fi

now() { date +%s.%N; }
rate() { python3 -c "import sys; b,t=float(sys.argv[1]),float(sys.argv[2]); print(f'{b/t/1e6:.1f}')" "$1" "$2"; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
runs="${CAIRN_BENCH_RUNS:-3}"

# Every run reads the data from the page cache: it is read once just before each run
# (this machine's kernel pages out memory it sees as cold, even between runs). Not
# `tar -cf - . > /dev/null`: GNU tar sees that its archive is /dev/null and reads no file.
warm() { tar -C "$data" -cf - . | cat > /dev/null; }

echo "== setting up cairn serve"
export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_ENDPOINT_URL_S3="$s3"
# Restores write into tmpfs where there is one: this machine's disk writes 1.1 GB in
# 10-12 s whoever writes it, which would drown what (h) and (i) do differently.
restores="$work/restores"
if [ -d /dev/shm ] && [ "$(df -k --output=avail /dev/shm | tail -1)" -gt $(( 3 * input_bytes / 1024 )) ]; then
    restores=/dev/shm/cairn-bench-restores
fi
mkdir -p "$restores"
incdata="$work/inc-data"
export CAIRN_SECRET_BENCH_REPO=bench-repository-password
export CAIRN_TABLE_PREFIX="bench$(date +%s)" CAIRN_BUCKET=bench CAIRN_SOURCE_DIRS="$data:$incdata" CAIRN_RESTORE_DIRS="$restores" CAIRN_RATE_LIMIT_GET=100000 CAIRN_RATE_LIMIT_WRITE=100000 RUST_LOG=warn
"$cairn_bin" init >/dev/null
key=$("$cairn_bin" --output json keys create --name bench --permissions all | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
"${on_work[@]}" "$cairn_bin" serve --port 3999 >"$work/serve.log" 2>&1 &
serve_pid=$!
pids+=($serve_pid)
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:3999/api/health >/dev/null && break; sleep 0.1; done
api() { curl -sf -H "Authorization: Bearer $key" -H 'content-type: application/json' "$@"; }
dest=$(api -X POST http://127.0.0.1:3999/api/destinations -d '{"name":"bench","bucket":"bench","prefix":"cairn"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
job=$(api -X POST http://127.0.0.1:3999/api/jobs -d "{\"name\":\"bench\",\"items\":[{\"name\":\"data\",\"source\":{\"kind\":\"directory\",\"path\":\"$data\",\"exclude\":[\".complete-*\"]}}],\"destinations\":[\"$dest\"],\"compression\":{\"algorithm\":\"zstd\",\"level\":3}}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
# Waits for the execution a trigger's answer names; sets exe and body (the finished one).
wait_for() {
    [[ $1 =~ \"executionId\":\"([^\"]+)\" ]] || { echo "cairn did not queue the run: $1"; exit 1; }
    exe=${BASH_REMATCH[1]}
    while :; do
        sleep 1
        body=$(api "http://127.0.0.1:3999/api/executions/$exe")
        case "$body" in *'"status":"Pending"'* | *'"status":"Running"'*) ;; *) break ;; esac
    done
    local status
    status=$(echo "$body" | jq -r .data.status)
    [ "$status" = Success ] || { echo "cairn execution ended $status: $body"; exit 1; }
}
a_all=()
cpu_all=()
ticks() { awk '{print $14 + $15}' "/proc/$serve_pid/stat"; }
hz=$(getconf CLK_TCK)
echo "== (b) tar | zstd -3 > /dev/null  and  (a) cairn serve, in turns  (x$runs)"
b_all=()
for _ in $(seq 1 "$runs"); do
    warm
    t0=$(now); "${on_work[@]}" bash -c 'tar -C "$1" -cf - . | zstd -q -3 > /dev/null' _ "$data"; t1=$(now)
    b_all+=("$(python3 -c "print($t1-$t0)")")
    warm
    t0=$(ticks)
    # The trigger's answer and the polls are read with bash alone (no process to start on
    # the cores the run is using); jq reads the finished execution once.
    wait_for "$(api -X POST "http://127.0.0.1:3999/api/jobs/$job/run")"
    backup=$exe
    a_all+=("$(echo "$body" | jq -r '.data.duration / 1000')")
    cpu_all+=("$(python3 -c "print(f'{($(ticks) - $t0) / $hz:.2f}')")")
    stored=$(echo "$body" | jq -r .data.size)
done

echo "== (c) tar | zstd -3 | aws s3 cp -  (x$runs)"
c_all=()
for i in $(seq 1 "$runs"); do
    warm
    t0=$(now); "${on_work[@]}" bash -c 'tar -C "$1" -cf - . | zstd -q -3 | "$2" --endpoint-url "$3" s3 cp - "$4" >/dev/null' _ "$data" "$root/.tools/bench-venv/bin/aws" "$s3" "s3://bench/manual/data-$i.tar.zst"; t1=$(now)
    c_all+=("$(python3 -c "print($t1-$t0)")")
done

echo "== (d) restic backup  (x$runs, a new repository each time)"
export RESTIC_PASSWORD=bench
d_all=()
for i in $(seq 1 "$runs"); do
    restic -q -r "s3:$s3/bench/restic-$i" init >/dev/null
    warm
    t0=$(now); "${on_work[@]}" restic -q -r "s3:$s3/bench/restic-$i" backup "$data" >/dev/null; t1=$(now)
    d_all+=("$(python3 -c "print($t1-$t0)")")
done

# The incremental runs: (e) first, (f) unchanged, (g) after changing 1% of the files and
# appending 10 MiB to the largest; the same three for Cairn and for restic, each on a
# fresh copy of the data set.
rchar() { awk '/^rchar/ {print $2}' "/proc/$1/io"; }
# A prefix that does not exist yet holds 0 bytes (aws s3 ls fails on it).
bucket_bytes() { { aws s3 ls --recursive --summarize "s3://bench/$1/" 2>/dev/null || true; } | awk '/Total Size/ {s = $3} END {print s + 0}'; }
fresh_copy() { rm -rf "$incdata"; cp -a "$data" "$incdata"; rm -f "$incdata"/.complete-*; }
change_some() {
    python3 - "$incdata" <<'PY'
import os, random, sys
root = sys.argv[1]
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
rng = random.Random(15)
for path in files[::100]:  # 1% of the files: their first 4 KiB rewritten
    with open(path, "r+b") as f:
        f.write(rng.randbytes(min(4096, os.path.getsize(path))))
largest = max(files, key=os.path.getsize)
with open(largest, "ab") as f:
    f.write(rng.randbytes(10 * 2**20))
PY
}
echo "== (e) (f) (g) incremental backups: cairn, then restic 0.14 into its own repository"
fresh_copy
inc_dest=$(api -X POST http://127.0.0.1:3999/api/destinations -d '{"name":"bench-inc","bucket":"bench","prefix":"cairn-inc","repository":{"passwordEnv":"CAIRN_SECRET_BENCH_REPO"}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
inc_job=$(api -X POST http://127.0.0.1:3999/api/jobs -d "{\"name\":\"bench-inc\",\"incremental\":true,\"items\":[{\"name\":\"data\",\"source\":{\"kind\":\"directory\",\"path\":\"$incdata\"}}],\"destinations\":[\"$inc_dest\"]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
inc_rows=()
for run in e f g; do
    [ "$run" = g ] && change_some
    tar -C "$incdata" -cf - . | cat > /dev/null
    up0=$(bucket_bytes cairn-inc/repository); r0=$(rchar "$serve_pid")
    wait_for "$(api -X POST "http://127.0.0.1:3999/api/jobs/$inc_job/run")"
    secs=$(echo "$body" | jq -r '.data.duration / 1000')
    up1=$(bucket_bytes cairn-inc/repository); r1=$(rchar "$serve_pid")
    inc_rows+=("($run) cairn|$secs|$((r1 - r0))|$((up1 - up0))")
done
fresh_copy
export RESTIC_PASSWORD=bench
restic -q -r "s3:$s3/bench/restic-inc" init >/dev/null
for run in e f g; do
    [ "$run" = g ] && change_some
    tar -C "$incdata" -cf - . | cat > /dev/null
    up0=$(bucket_bytes restic-inc)
    t0=$(now)
    "${on_work[@]}" restic -q -r "s3:$s3/bench/restic-inc" backup "$incdata" >/dev/null &
    rp=$!; r=0
    while kill -0 "$rp" 2>/dev/null; do r=$(rchar "$rp" 2>/dev/null || echo "$r"); sleep 0.05; done
    wait "$rp"; t1=$(now)
    up1=$(bucket_bytes restic-inc)
    inc_rows+=("($run) restic|$(python3 -c "print(f'{$t1-$t0:.2f}')")|$r|$((up1 - up0))")
done
rm -rf "$incdata"

peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status")

# (i) and (h) take turns, so neither always meets the state the other leaves; the target
# is removed before each (not timed).
settle() { rm -rf "${restores:?}"/*; sync; }
echo "== (i) aws s3 cp - | zstd -d | tar -x  and  (h) cairn restore through the API, in turns  (x$runs)"
i_all=()
h_all=()
h_cpu=()
for i in $(seq 1 "$runs"); do
    settle
    mkdir -p "$restores/manual"
    t0=$(now); "${on_work[@]}" bash -c '"$1" --endpoint-url "$2" s3 cp "$3" - | zstd -q -d | tar -C "$4" -xf -' _ "$root/.tools/bench-venv/bin/aws" "$s3" "s3://bench/manual/data-1.tar.zst" "$restores/manual"; t1=$(now)
    i_all+=("$(python3 -c "print($t1-$t0)")")
    settle
    t0=$(ticks)
    wait_for "$(api -X POST "http://127.0.0.1:3999/api/executions/$backup/restore" -d "{\"target\":{\"kind\":\"directory\",\"path\":\"$restores/cairn-$i\"}}")"
    h_all+=("$(echo "$body" | jq -r '.data.duration / 1000')")
    h_cpu+=("$(python3 -c "print(f'{($(ticks) - $t0) / $hz:.2f}')")")
done
settle
rmdir "$restores" 2>/dev/null || true

a_secs=$(median "${a_all[@]}"); b_secs=$(median "${b_all[@]}"); c_secs=$(median "${c_all[@]}"); d_secs=$(median "${d_all[@]}")
h_secs=$(median "${h_all[@]}"); i_secs=$(median "${i_all[@]}")
h=$(rate "$input_bytes" "$h_secs"); i=$(rate "$input_bytes" "$i_secs")
a=$(rate "$input_bytes" "$a_secs"); b=$(rate "$input_bytes" "$b_secs"); c=$(rate "$input_bytes" "$c_secs"); d=$(rate "$input_bytes" "$d_secs")
echo
where="$(nproc) cores"
[ "$pinned" = 1 ] && where="contenders pinned to core 0, endpoints to core 1"
echo "Cairn backup benchmark: S3 by $server, $files files, $(python3 -c "print(f'{$input_bytes/2**30:.2f}')") GiB, $where, median of $runs runs"
echo "(all runs, seconds: a ${a_all[*]} | b ${b_all[*]} | c ${c_all[*]} | d ${d_all[*]} | h ${h_all[*]} | i ${i_all[*]})"
printf '%-44s %8s MB/s  %6.1f s\n' "(a) cairn serve (tar|zstd-3|S3 multipart)" "$a" "$a_secs"
printf '%-44s %8s MB/s  %6.1f s\n' "(b) tar | zstd -3 > /dev/null" "$b" "$b_secs"
printf '%-44s %8s MB/s  %6.1f s\n' "(c) tar | zstd -3 | aws s3 cp -" "$c" "$c_secs"
printf '%-44s %8s MB/s  %6.1f s\n' "(d) restic backup" "$d" "$d_secs"
printf '%-44s %8s MB/s  %6.1f s\n' "(h) cairn restore through the API" "$h" "$h_secs"
printf '%-44s %8s MB/s  %6.1f s\n' "(i) aws s3 cp - | zstd -d | tar -x" "$i" "$i_secs"
echo "ratios: a/b $(python3 -c "print(f'{$a/$b:.2f}')")  a/c $(python3 -c "print(f'{$a/$c:.2f}')")  a/d $(python3 -c "print(f'{$a/$d:.2f}')")  h/i $(python3 -c "print(f'{$h/$i:.2f}')")"
echo "incremental (same data set; restic's bytes read are sampled every 50 ms, so a little short):"
printf '  %-12s %9s %16s %16s\n' run seconds "bytes read" "bytes uploaded"
for row in "${inc_rows[@]}"; do IFS='|' read -r name secs rd upl <<<"$row"; printf '  %-12s %9s %16s %16s\n' "$name" "$secs" "$rd" "$upl"; done
python3 - "$a_secs" "${inc_rows[@]}" <<'PY'
import sys
a = float(sys.argv[1])
rows = {r.split("|")[0]: [float(x) for x in r.split("|")[1:]] for r in sys.argv[2:]}
e, f, g = rows["(e) cairn"], rows["(f) cairn"], rows["(g) cairn"]
print(f"  goals: f/a time {f[0]/a:.3f} (<= 0.25)  f/e uploaded {f[2]/e[2]:.4f} (< 0.01)  g/e uploaded {g[2]/e[2]:.4f} (< 0.03)  "
      f"e vs restic's first {e[0]/rows['(e) restic'][0]:.2f} (< 1)")
PY
echo "stored by cairn: $stored bytes (ratio $(python3 -c "print(f'{$stored/$input_bytes:.3f}')"))"
echo "peak memory of cairn serve (VmHWM): $((peak_kib / 1024)) MiB"
echo "CPU time of cairn serve per (a) run, user + system (s): ${cpu_all[*]}; per (h) run: ${h_cpu[*]}"
echo "restores written to: $restores"
