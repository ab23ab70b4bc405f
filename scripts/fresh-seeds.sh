#!/usr/bin/env bash
# A simulator swarm over seeds no earlier run chose: the range is derived from the commit and the
# date, and printed, so that a failure can be replayed (`arca-sim run --seed S ...`, which the
# swarm prints for each failing seed). A seed found failing here is fixed, then added to
# REGRESSION_SEEDS in sim/tests/simulator.rs. FRESH_SEEDS sets how many (about two minutes on two
# cores by default).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${FRESH_SEEDS:-400}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
day=$(date -u +%F)
digest=$(printf '%s %s' "$commit" "$day" | sha256sum | cut -c1-12)
# Above every fixed seed of the suite; below 2^53, so any tool reads it exactly.
first=$(( 16#$digest % 1000000000000000 + 1000000 ))
echo "fresh seeds for commit $commit on $day: arca-sim swarm --seeds $seeds --first $first --faults all"
cargo run --locked --quiet -p arca-sim -- swarm --seeds "$seeds" --first "$first" --no-shrink --faults all
