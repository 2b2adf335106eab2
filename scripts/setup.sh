#!/usr/bin/env bash
# Set up everything authhooks needs on this machine: system packages and the
# virtualenv. Idempotent and quick when nothing changed.
#   scripts/setup.sh                  runtime dependencies
#   scripts/setup.sh dev              plus the test and lint tools
#   scripts/setup.sh dev wrk ...      plus these commands from Debian packages of the same name
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
shift || true
venv=.venv
python="${PYTHON:-python3}"

need_apt=()
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
for tool in "$@"; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need_apt[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: authhooks needs ${need_apt[*]}: run 'sudo apt-get install ${need_apt[*]}' and retry" >&2
    exit 1
  fi
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: authhooks needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"

stamp="$venv/.installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  spec="."
  [ -n "$extras" ] && spec=".[$extras]"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$spec"
  touch "$stamp"
fi
