# s3s_fs_install ROOT: builds s3s-fs 0.14.1 (crates.io, an S3 server over a directory that
# implements no bucket settings and keeps no CRC64NVME) into ROOT/.tools/s3s-fs, once. The
# tests use it as a third-party store; bench/backup.sh measures against it.
s3s_fs_install() {
    local root="$1"
    [ -x "$root/.tools/s3s-fs/bin/s3s-fs" ] && return 0
    echo "building s3s-fs 0.14.1 into .tools/s3s-fs (once, a few minutes)"
    cargo install --quiet --locked s3s-fs --version 0.14.1 --features binary \
        --root "$root/.tools/s3s-fs" --target-dir "${XDG_CACHE_HOME:-$HOME/.cache}/cairn/s3s-fs-target"
}
