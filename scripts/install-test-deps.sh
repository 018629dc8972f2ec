#!/usr/bin/env bash
# Installs what the tests need, idempotently: Debian packages (jq, zstd, curl, PostgreSQL
# server and client, runuser) and a venv with cfn-lint. Nothing is assumed to be present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need_apt=()
for cmd in jq zstd curl tar runuser psql pg_restore pg_dump python3 file; do
    command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$cmd")
done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgres-server)
id postgres >/dev/null 2>&1 || need_apt+=(postgres-user)

if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "installing Debian packages for: ${need_apt[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
        jq zstd curl tar util-linux file postgresql postgresql-client python3 python3-venv >/dev/null
fi

venv="$root/.tools/venv"
cfn_lint_version="1.58.0"
if [ ! -x "$venv/bin/cfn-lint" ] || ! grep -qx "$cfn_lint_version" "$venv/.cfn-lint-version" 2>/dev/null; then
    echo "installing cfn-lint==$cfn_lint_version into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$cfn_lint_version"
    echo "$cfn_lint_version" > "$venv/.cfn-lint-version"
fi

ansible_venv="$root/.tools/ansible"
ansible_version="2.19.14"
if [ ! -x "$ansible_venv/bin/ansible-playbook" ] || ! grep -qx "$ansible_version" "$ansible_venv/.ansible-version" 2>/dev/null; then
    echo "installing ansible-core==$ansible_version into $ansible_venv"
    python3 -m venv "$ansible_venv"
    "$ansible_venv/bin/pip" install --quiet --disable-pip-version-check "ansible-core==$ansible_version"
    echo "$ansible_version" > "$ansible_venv/.ansible-version"
fi
