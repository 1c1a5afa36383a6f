#!/usr/bin/env bash
# Fuzz every Fuzz* target of the root package for a short fixed time each
# (FUZZTIME, default 8s; e.g. FUZZTIME=5m bash scripts/fuzz.sh for a long
# local run), print a summary, and exit 1 if any target failed.
#
# A failing input is written by go test to testdata/fuzz/<Target>/<hash>:
# commit it with the fix, and every plain `go test` replays it from then
# on as a regression test (the seed corpora there are replayed the same way).
set -uo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-8s}"
logdir="$(mktemp -d)"
trap 'rm -rf "$logdir"' EXIT

# The targets, as go test lists them (compiles the test binary once).
if ! targets=$(go test -list '^Fuzz' . | grep '^Fuzz'); then
  echo "fuzz: could not list the fuzz targets" >&2
  exit 1
fi

passed=0
failed=0
failures=()
start=$SECONDS
for t in $targets; do
  t0=$SECONDS
  if go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" . >"$logdir/$t.log" 2>&1; then
    passed=$((passed + 1))
    # The last progress line says how many inputs were tried.
    execs=$(grep -o 'execs: [0-9]*' "$logdir/$t.log" | tail -1 | cut -d' ' -f2)
    printf 'ok    %-22s %3ds  %s execs\n' "$t" $((SECONDS - t0)) "${execs:-?}"
  else
    failed=$((failed + 1))
    failures+=("$t")
    printf 'FAIL  %-22s %3ds\n' "$t" $((SECONDS - t0))
    sed 's/^/      /' "$logdir/$t.log" | tail -40
  fi
done

echo
echo "fuzz: ${#failures[@]} of $((passed + failed)) targets failed in $((SECONDS - start))s (${fuzztime} each)"
for t in "${failures[@]}"; do
  echo "  $t: new failing inputs, if any, are in testdata/fuzz/$t/"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
