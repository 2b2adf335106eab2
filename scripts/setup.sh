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
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)  # the dashboard, JavaScript hooks
command -v "${CC:-cc}" >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)  # runtime/node/confine.c
command -v git >/dev/null 2>&1 || need_apt+=(git)  # git sources fetch with the git CLI
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)  # ... over ssh too
if [ "$extras" = dev ]; then  # the dashboard's browser tests
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
  [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)  # tests/gitsync's ssh server (run unprivileged)
fi
for tool in "$@"; do
  case "$tool" in
    sshd) [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server) ;;  # Debian names it so
    *) command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool") ;;
  esac
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

# JavaScript hooks: the Node.js worker's proxy agents (npm, pinned by its lock file,
# no install scripts) and confine.c, which confines a worker before Node starts.
node_worker=src/authhooks/runtime/node
if [ ! -f "$node_worker/node_modules/.package-lock.json" ] \
  || [ "$node_worker/package-lock.json" -nt "$node_worker/node_modules/.package-lock.json" ]; then
  (cd "$node_worker" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
if [ ! -f "$node_worker/confine.so" ] || [ "$node_worker/confine.c" -nt "$node_worker/confine.so" ]; then
  "${CC:-cc}" -shared -fPIC -O2 -Wall -Wextra -Werror -o "$node_worker/confine.so" "$node_worker/confine.c"
fi

# The dashboard's assets and the API reference's (Swagger UI): built from their
# sources (npm, pinned by the lock file) whenever they changed or one is missing;
# node_modules is refreshed when the lock file changed.
frontend=src/authhooks/dashboard/frontend
bundle=src/authhooks/dashboard/static/app.js
docs_bundle=src/authhooks/dashboard/static/docs.js
if [ ! -f "$frontend/node_modules/.package-lock.json" ] \
  || [ "$frontend/package-lock.json" -nt "$frontend/node_modules/.package-lock.json" ]; then
  (cd "$frontend" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -f "$bundle" ] || [ ! -f "$docs_bundle" ] \
  || [ -n "$(find "$frontend/src" "$frontend/package.json" "$frontend/package-lock.json" -newer "$bundle" -print -quit)" ]; then
  (cd "$frontend" && npm run --silent build >/dev/null)
fi

# The browser sign-in tests' single-page app: oidc-client-ts from npm (pinned by
# its lock file, no install scripts).
if [ "$extras" = dev ]; then
  spa=tests/signin/spa
  if [ ! -f "$spa/node_modules/.package-lock.json" ] \
    || [ "$spa/package-lock.json" -nt "$spa/node_modules/.package-lock.json" ]; then
    (cd "$spa" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
fi

# The compatibility tests' tools: Auth0's Deploy CLI from npm (pinned by its lock
# file, no install scripts).
if [ "$extras" = dev ]; then
  compat=tests/compat
  if [ ! -f "$compat/node_modules/.package-lock.json" ] \
    || [ "$compat/package-lock.json" -nt "$compat/node_modules/.package-lock.json" ]; then
    (cd "$compat" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
fi

# ... and Auth0's Python SDK, as teams leaving Auth0 call the Management API with
# it: the current 6.x and the last 4.x (which still has a Hooks class), each in a
# directory of its own so that their dependencies never meet the server's.
if [ "$extras" = dev ]; then
  for version in 4.13.0 6.8.0; do
    sdk="tests/compat/.auth0-python-${version%%.*}"
    if [ ! -f "$sdk/.installed-$version" ]; then
      rm -rf "$sdk"
      "$venv/bin/pip" install --quiet --disable-pip-version-check --target "$sdk" "auth0-python==$version" 2>/dev/null
      touch "$sdk/.installed-$version"
    fi
  done
fi
