#!/usr/bin/env bash
# Installs the peer registries `arca-bench packages` compares with, into a directory the benchmark owns
# (not on the test path: the tests do not need them). Idempotent; exits non-zero when an install fails.
#
#   npm:  verdaccio 6.5.2   (npm; 6.10 needs Node 22)  -> $PEERS/node_modules/verdaccio
#   PyPI: pypiserver        (PyPI, in a virtualenv)    -> $PEERS/pypiserver/bin/pypi-server
#
# The benchmark looks in the same place: ARCA_BENCH_PEERS, default /opt/arca-bench-peers.
set -euo pipefail

PEERS="${ARCA_BENCH_PEERS:-/opt/arca-bench-peers}"
VERDACCIO_VERSION="6.5.2"
PYPISERVER_VERSION="2.4.2"

log() { echo "install-bench-peers: $*" >&2; }

install_verdaccio() {
    local bin="$PEERS/node_modules/verdaccio/bin/verdaccio"
    if [ -f "$bin" ] && [ "$(node -p "require('$PEERS/node_modules/verdaccio/package.json').version")" = "$VERDACCIO_VERSION" ]; then
        log "verdaccio $VERDACCIO_VERSION present ($PEERS)"
        return
    fi
    command -v npm >/dev/null 2>&1 || {
        log "npm is needed to install verdaccio"
        exit 1
    }
    mkdir -p "$PEERS"
    # verdaccio-audit asks for `node-fetch@cjs`, a dist-tag the npm mirror here does not carry; pin the
    # release that tag names upstream (the 2.x line) for the whole tree.
    cat >"$PEERS/package.json" <<'JSON'
{
  "private": true,
  "overrides": { "node-fetch": "2.7.0" }
}
JSON
    log "npm install --prefix $PEERS verdaccio@$VERDACCIO_VERSION"
    npm install --prefix "$PEERS" --no-audit --no-fund --loglevel=error "verdaccio@$VERDACCIO_VERSION" >&2
    [ -f "$bin" ] || {
        log "verdaccio installed but $bin is missing"
        exit 1
    }
}

install_pypiserver() {
    local venv="$PEERS/pypiserver"
    if [ -x "$venv/bin/pypi-server" ] && "$venv/bin/python" -c 'import waitress, watchdog' >/dev/null 2>&1; then
        log "pypiserver present ($venv)"
        return
    fi
    log "python3 -m venv $venv; pip install pypiserver==$PYPISERVER_VERSION"
    python3 -m venv "$venv"
    # pypiserver's default WSGI server is the single-threaded wsgiref; waitress serves concurrent
    # clients with threads, and `--server auto` (the default) picks it when it is installed. With
    # watchdog, its default backend caches the package directory's listing and digests instead of
    # scanning the directory on every request.
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        "pypiserver==$PYPISERVER_VERSION" "waitress==3.0.2" "watchdog==6.0.0" >&2
    [ -x "$venv/bin/pypi-server" ] || {
        log "pypiserver installed but $venv/bin/pypi-server is missing"
        exit 1
    }
}

install_verdaccio
install_pypiserver
log "peers in $PEERS"
