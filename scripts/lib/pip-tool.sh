# Sourced by the project's scripts: installs a pinned PyPI tool into its own venv, once.
#
#   pip_tool VENV 'package[extras]==VERSION [other==VERSION ...]' EXECUTABLE
#
# Reinstalls when the executable is missing or the venv holds another pin.
pip_tool() {
    local venv="$1" spec="$2" exe="$3"
    if [ ! -x "$venv/bin/$exe" ] || ! grep -qxF "$spec" "$venv/.installed" 2>/dev/null; then
        echo "installing $spec into $venv"
        python3 -m venv "$venv"
        # shellcheck disable=SC2086 # one pin per word
        "$venv/bin/pip" install --quiet --disable-pip-version-check $spec
        echo "$spec" > "$venv/.installed"
    fi
}
