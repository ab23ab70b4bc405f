#!/usr/bin/env bash
# Writes tests/fixtures/formats/data-format-<N>.tar.gz: a small data directory written by this build
# (N is the state format it writes), with artifacts of every kind the node serves, and the list of
# what must read back from it (expected.tsv: URL path and sha256). tests/tests/formats.rs opens every
# such fixture with the current build and checks each artifact, so data written by one build keeps
# loading in every later one. Run it once per new format; never regenerate an existing fixture.
#
#   bash scripts/make-format-fixture.sh
set -euo pipefail
cd "$(dirname "$0")/.."

format="$(sed -n 's/^pub const STATE_FORMAT: u32 = \([0-9]*\);/\1/p' node/src/meta/tables.rs)"
out="tests/fixtures/formats/data-format-${format}.tar.gz"
if [ -e "$out" ]; then
    echo "$out exists: a fixture of a format is written once" >&2
    exit 1
fi
cargo build --bins --locked
node_bin="$PWD/target/debug/arca-node"
arca="$PWD/target/debug/arca"

work="$(mktemp -d)"
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

data="$work/data"
"$node_bin" --data-dir "$data" --http 127.0.0.1:0 --quic 127.0.0.1:0 >"$work/node.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    [ -s "$data/http.addr" ] && [ -s "$data/admin.token" ] && break
    sleep 0.1
done
export ARCA_SERVER="http://$(cat "$data/http.addr")"
export ARCA_TOKEN="$(cat "$data/admin.token")"
api() { curl -fsS -H "Authorization: Bearer $ARCA_TOKEN" "$@"; }
expected="$work/expected.tsv"
: >"$expected"
expect() { # expect URL-PATH FILE
    printf '%s\t%s\n' "$1" "$(sha256sum "$2" | cut -d' ' -f1)" >>"$expected"
}

for registry in files:GENERIC npm:NPM pypi:PYPI maven:MAVEN images:DOCKER; do
    "$arca" registry create "${registry%%:*}" --package-type "${registry#*:}" >/dev/null
done

# Generic: a file small enough to live in the metadata, and one in a chunk file.
printf 'small file\n' >"$work/small.txt"
head -c 600000 /dev/urandom >"$work/large.bin"
"$arca" artifact push generic files "$work/small.txt" --package tool --version 1.0 >/dev/null
"$arca" artifact push generic files "$work/large.bin" --package tool --version 2.0 >/dev/null
expect /generic/files/tool/1.0/small.txt "$work/small.txt"
expect /generic/files/tool/2.0/large.bin "$work/large.bin"
"$arca" artifact metadata set --registry files --package tool --metadata owner:platform >/dev/null

# npm: a package as `npm pack` makes it.
mkdir -p "$work/npm/package"
printf '{"name":"fixture-pkg","version":"1.0.0","description":"format fixture"}\n' \
    >"$work/npm/package/package.json"
tar -C "$work/npm" -czf "$work/fixture-pkg-1.0.0.tgz" package
"$arca" artifact push npm npm "$work/fixture-pkg-1.0.0.tgz" >/dev/null
expect /npm/npm/fixture-pkg/-/fixture-pkg-1.0.0.tgz "$work/fixture-pkg-1.0.0.tgz"

# PyPI: a minimal wheel.
python3 - "$work/fixture_pkg-1.0-py3-none-any.whl" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as wheel:
    wheel.writestr("fixture_pkg/__init__.py", "")
    wheel.writestr("fixture_pkg-1.0.dist-info/METADATA",
                   "Metadata-Version: 2.1\nName: fixture-pkg\nVersion: 1.0\n")
    wheel.writestr("fixture_pkg-1.0.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    wheel.writestr("fixture_pkg-1.0.dist-info/RECORD", "")
PY
"$arca" artifact push python pypi "$work/fixture_pkg-1.0-py3-none-any.whl" >/dev/null
expect /pypi/pypi/files/fixture-pkg/1.0/fixture_pkg-1.0-py3-none-any.whl \
    "$work/fixture_pkg-1.0-py3-none-any.whl"

# Maven: a jar.
head -c 20000 /dev/urandom >"$work/lib.jar"
"$arca" artifact push maven maven "$work/lib.jar" --group org.example --artifact lib \
    --version 1.0 >/dev/null
expect /maven/maven/org/example/lib/1.0/lib-1.0.jar "$work/lib.jar"

# OCI: a config, a layer and a manifest tagged `v1`.
printf '{}' >"$work/config.json"
head -c 100000 /dev/urandom >"$work/layer.bin"
digest() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
for blob in config.json layer.bin; do
    api -X POST --data-binary "@$work/$blob" -H 'Content-Type: application/octet-stream' \
        "$ARCA_SERVER/v2/images/app/blobs/uploads/?digest=$(digest "$work/$blob")" >/dev/null
done
cat >"$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$(digest "$work/config.json")","size":$(stat -c %s "$work/config.json")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"$(digest "$work/layer.bin")","size":$(stat -c %s "$work/layer.bin")}]}
JSON
api -X PUT --data-binary "@$work/manifest.json" \
    -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    "$ARCA_SERVER/v2/images/app/manifests/v1" >/dev/null
expect /v2/images/app/manifests/v1 "$work/manifest.json"
expect "/v2/images/app/blobs/$(digest "$work/layer.bin")" "$work/layer.bin"

# A user with a token of its own.
"$arca" user create fixture-user --password-stdin <<<"fixture-password" >/dev/null

kill -TERM "$pid"
wait "$pid" || true
pid=""
rm -f "$data/http.addr" "$data/quic.addr"
mkdir -p "$(dirname "$out")"
tar -C "$work" -czf "$out" data expected.tsv
echo "wrote $out ($(du -h "$out" | cut -f1))"
