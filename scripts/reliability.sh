#!/usr/bin/env bash
# The reliability suite in one command (the soak excepted: see
# e2e/cmd/soak): upstream faults, overload, graceful shutdown under load,
# SIGKILL with the file audit, the bad-input catalogue, then every fuzz
# target for FUZZTIME each. Needs root (tmpfs and loop mounts in e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
(cd e2e && go test -count=1 -timeout 20m -run 'TestRel' ./...)
bash scripts/fuzz.sh
