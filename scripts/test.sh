#!/usr/bin/env bash
# Runs Arca's whole test suite: unit tests of every crate and the integration tests in tests/, which
# start real nodes on 127.0.0.1 and drive them with real clients. Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real clients the integration tests drive (skopeo, umoci, helm, oras, ...).
bash scripts/install-clients.sh

# The integration tests run the workspace's binaries (arca-node, arca); build them first.
cargo build --workspace --bins --locked
cargo test --workspace --locked "$@"
