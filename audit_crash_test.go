package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// auditCrashEnv names the audit file for the helper process of
// TestFileAuditSurvivesSIGKILL.
const auditCrashEnv = "AUDIT_CRASH_HELPER_FILE"

// TestAuditCrashHelper is not a test on its own: run as a child process by
// TestFileAuditSurvivesSIGKILL, it appends from 8 goroutines until killed,
// printing the id of every acknowledged event.
func TestAuditCrashHelper(t *testing.T) {
	path := os.Getenv(auditCrashEnv)
	if path == "" {
		return
	}
	a, err := openFileAudit(path, true, 100, AuditHooks{}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				evs := []AuditEvent{auditEv(fmt.Sprint(w, "-", i, "-a")), auditEv(fmt.Sprint(w, "-", i, "-b"))}
				evs[0].ID, evs[1].ID = newUUID(), newUUID()
				if err := a.Append(context.Background(), evs...); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "%s\n%s\n", evs[0].ID, evs[1].ID)
				mu.Unlock()
			}
		}()
	}
	select {}
}

func TestFileAuditSurvivesSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	for round := range 2 { // the second round continues the chain the first was killed in
		cmd := exec.Command(os.Args[0], "-test.run=^TestAuditCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), auditCrashEnv+"="+path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := map[string]bool{}
		sc := bufio.NewScanner(out)
		for len(acked) < 400 && sc.Scan() {
			acked[sc.Text()] = true
		}
		cmd.Process.Kill() // SIGKILL while appends are in flight
		for sc.Scan() {    // acknowledgements already in the pipe
			acked[sc.Text()] = true
		}
		cmd.Wait()
		if len(acked) < 400 {
			t.Fatalf("round %d: helper acknowledged only %d records; stderr: %s", round, len(acked), stderr.String())
		}

		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		records, bad, verr := verifyAuditFile(bytes.NewReader(data))
		if verr != nil {
			// Only a write torn by the kill itself (never acknowledged) may
			// remain, as an incomplete last line; open repairs it.
			if bad != records+1 || bytes.HasSuffix(data, []byte("\n")) {
				t.Fatalf("round %d: verify after SIGKILL: %d records, first bad %d: %v", round, records, bad, verr)
			}
			t.Logf("round %d: torn last write: %v", round, verr)
		}
		in := map[string]bool{}
		for line := range bytes.Lines(data) {
			if ev, reason := auditCheckLine(bytes.TrimSuffix(line, []byte("\n")), 0, ""); reason == "" {
				in[ev.ID] = true
			}
		}
		for id := range acked {
			if !in[id] {
				t.Fatalf("round %d: acknowledged record %s missing from the file after SIGKILL", round, id)
			}
		}
		t.Logf("round %d: %d acknowledged, %d records in the file", round, len(acked), records)
	}
	// Reopening after the kills continues the chain and the whole file verifies.
	a, err := openFileAudit(path, true, 10, AuditHooks{}, nil)
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	if err := a.Append(context.Background(), auditEv("after-crash")); err != nil {
		t.Fatal(err)
	}
	a.Close()
	data, _ := os.ReadFile(path)
	auditMustVerify(t, data)
}
