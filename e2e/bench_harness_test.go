package e2e

// Smoke test of the load harness (cmd/bench): built and run with -quick
// against the binary TestMain built, it must run every scenario and print
// the whole table. Targets are not asserted here (a loaded CI machine
// says nothing about them); that the harness works is.

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// benchSmokeTimeout bounds the whole -quick run: about 10 s on an idle
// 2-core machine (scenarios 4 and 5 wait out a 1.5 s and a 1 s upstream
// on each side), generously more on a loaded one.
const benchSmokeTimeout = 4 * time.Minute

// benchRows are the metrics the table must hold, one regexp per row, each
// with a number in the production-agent column.
var benchRows = []string{
	`\| 1 \| /chat throughput, embedded model, c=\d+ \(req/s\) \| \d+ \| \d+ baseline \|`,
	`\| 1 \| answers 200 \| [\d.]+ % of \d+ \|`,
	`\| 2 \| added p50 at c=1, openai → mock 0 ms \(µs\) \| -?\d+ \| -?\d+ proxy \|`,
	`\| 2 \| added p99 at c=1, openai → mock 0 ms \(µs\) \| -?\d+ \| -?\d+ proxy \|`,
	`\| 3 \| CPU per request at \d+ req/s, openai → mock 0 ms \(µs\) \| \d+ \| \d+ proxy \|`,
	`\| 4 \| peak RSS, \d+ req/s for [^|]+, upstream [^|]+ \(MiB\) \| [\d.]+ \| [\d.]+ proxy \|`,
	`\| 4 \| success rate \| [\d.]+ % of \d+ \|`,
	`\| 5 \| success rate, \d+ req/s for [^|]+, upstream [^|]+ \| [\d.]+ % of \d+ \|`,
	`\| 5 \| added p99 \(ms\) \| -?[\d.]+ \| -?[\d.]+ proxy \|`,
	`\| 6 \| idle RSS \(MiB\) \| [\d.]+ \| [\d.]+ proxy \|`,
	`\| 6 \| binary size \(MiB\) \| [\d.]+ \|`,
	`\| 6 \| start → /health/ready 200 \(ms\) \| [\d.]+ \|`,
}

func TestBenchHarnessQuick(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), benchSmokeTimeout)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "bench")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/bench")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/bench: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "-quick", "-binary", agentBinary)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	table := string(out)
	if err != nil {
		t.Fatalf("bench -quick: %v\nstdout:\n%s\nstderr:\n%s", err, table, stderr.String())
	}
	for _, want := range benchRows {
		if !regexp.MustCompile(want).MatchString(table) {
			t.Errorf("table has no row matching %s", want)
		}
	}
	if strings.Contains(table, "ERROR") {
		t.Errorf("a scenario failed")
	}
	// Every scenario must have actually served requests: the embedded-model
	// throughput run answers 200 to every request (limits never bind).
	if m := regexp.MustCompile(`\| 1 \| answers 200 \| ([\d.]+) %`).FindStringSubmatch(table); m != nil && m[1] != "100.00" {
		t.Errorf("scenario 1 answered 200 to %s %% of requests; want 100 %% (do limits bind?)", m[1])
	}
	// Scenario 3's closed-loop note: both processes served requests.
	if m := regexp.MustCompile(`scenario 3: closed loop at c=\d+ .*: CPU per request \d+ µs at (\d+) req/s \(production-agent\), \d+ µs at (\d+) req/s \(proxy\)`).FindStringSubmatch(table); m == nil {
		t.Errorf("no closed-loop note for scenario 3")
	} else if m[1] == "0" || m[2] == "0" {
		t.Errorf("scenario 3's closed loop served nothing on one side: %s", m[0])
	}
	if strings.Contains(table, "scenario 3, closed loop:") {
		t.Errorf("scenario 3's closed loop had failures")
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", table, stderr.String())
	}
}
