package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
)

// auditFakeFile is an in-memory auditFile with injectable failures.
type auditFakeFile struct {
	mu        sync.Mutex
	data      []byte
	syncs     int
	writeErr  error         // Write stores half of p, then fails with it
	syncErr   error         // Sync fails with it
	truncErr  error         // Truncate fails with it
	syncGate  chan struct{} // when non-nil, Sync waits for it to close
	closed    bool
	afterSync func() // called after each successful Sync, outside mu
}

func (f *auditFakeFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		f.data = append(f.data, p[:len(p)/2]...)
		return len(p) / 2, f.writeErr
	}
	f.data = append(f.data, p...)
	return len(p), nil
}

func (f *auditFakeFile) Sync() error {
	f.mu.Lock()
	gate := f.syncGate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	f.syncs++
	err := f.syncErr
	after := f.afterSync
	f.mu.Unlock()
	if err == nil && after != nil {
		after()
	}
	return err
}

func (f *auditFakeFile) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.truncErr != nil {
		return f.truncErr
	}
	f.data = f.data[:size]
	return nil
}

func (f *auditFakeFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *auditFakeFile) set(fn func(*auditFakeFile)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *auditFakeFile) snapshot() ([]byte, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.data), f.syncs
}

// auditStartFake runs a FileAudit on a fake file.
func auditStartFake(t *testing.T, f *auditFakeFile, fsync bool, hooks AuditHooks) *FileAudit {
	t.Helper()
	return auditStart("fake.jsonl", f, auditTail{hash: auditGenesisHash}, fsync, 100, hooks, auditFixedClock(auditT0))
}

// auditMustVerify checks the whole chain in data and returns its record count.
func auditMustVerify(t *testing.T, data []byte) uint64 {
	t.Helper()
	records, bad, err := verifyAuditFile(bytes.NewReader(data))
	if err != nil || bad != 0 {
		t.Fatalf("verifyAuditFile = %d records, first bad %d, %v; want an intact chain", records, bad, err)
	}
	return records
}

// auditParseLines decodes every line of an audit file.
func auditParseLines(t *testing.T, data []byte) []AuditEvent {
	t.Helper()
	var out []AuditEvent
	for line := range bytes.Lines(data) {
		var ev AuditEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("unmarshal %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

func auditEv(action string) AuditEvent {
	return AuditEvent{EventType: EventDataAccess, Actor: "alice", Action: action, Success: true}
}

func TestFileAuditRestartContinuesChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := openFileAudit(path, true, 100, AuditHooks{}, auditFixedClock(auditT0))
	if err != nil {
		t.Fatalf("openFileAudit: %v", err)
	}
	if err := a.Append(context.Background(), auditEv("a1"), auditEv("a2"), auditEv("a3")); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	before, _ := os.ReadFile(path)
	last := auditParseLines(t, before)[2]

	b, err := openFileAudit(path, true, 100, AuditHooks{}, auditFixedClock(auditT0))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	got, _ := b.Query(AuditQuery{})
	if len(got) != 3 || got[0].Action != "a3" || got[0].Seq != 3 {
		t.Errorf("Query after reopen = %d events, newest %q seq %d; want 3, a3, seq 3", len(got), got[0].Action, got[0].Seq)
	}
	if err := b.Append(context.Background(), auditEv("b1")); err != nil {
		t.Fatalf("Append after reopen: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.HasPrefix(after, before) {
		t.Errorf("reopen rewrote earlier records")
	}
	if n := auditMustVerify(t, after); n != 4 {
		t.Errorf("records after restart = %d; want 4", n)
	}
	next := auditParseLines(t, after)[3]
	if next.Seq != 4 || next.PrevHash != last.Hash {
		t.Errorf("first record after restart: seq %d prev_hash %s; want seq 4 prev_hash %s", next.Seq, next.PrevHash, last.Hash)
	}
}

func TestFileAuditRefusesCorruptedTail(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(lines [][]byte) []byte
		wantText string
	}{
		{"edited last record", func(ls [][]byte) []byte {
			ls[4] = bytes.Replace(ls[4], []byte("alice"), []byte("alicf"), 1)
			return auditJoin(ls)
		}, "seq 5: hash mismatch"},
		{"edited middle record", func(ls [][]byte) []byte {
			ls[2] = bytes.Replace(ls[2], []byte("alice"), []byte("alicf"), 1)
			return auditJoin(ls)
		}, "seq 3: hash mismatch"},
		{"deleted record", func(ls [][]byte) []byte { return auditJoin(append(ls[:1], ls[2:]...)) }, "seq 2:"},
		{"garbage line", func(ls [][]byte) []byte { return append(auditJoin(ls), "hello\n"...) }, "seq 6: invalid JSON"},
		{"foreign bytes without newline", func(ls [][]byte) []byte { return append(auditJoin(ls), "hello"...) }, "not an audit record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, lines := auditWriteChain(t, 5)
			if err := os.WriteFile(path, tt.mutate(lines), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := openFileAudit(path, true, 100, AuditHooks{}, nil)
			if err == nil {
				a.Close()
				t.Fatalf("openFileAudit(%s) = nil error; want a refusal", tt.name)
			}
			for _, want := range []string{path, tt.wantText, "audit verify", "refusing to start a new chain"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("openFileAudit error %q does not mention %q", err, want)
				}
			}
			if !errors.Is(err, auditErrChainBroken) {
				t.Errorf("openFileAudit error does not wrap auditErrChainBroken")
			}
		})
	}
}

func TestFileAuditTailWindowOfLargeFile(t *testing.T) {
	// A file larger than the tail window: open checks only its end, starting
	// from a record whose predecessor it did not read.
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := openFileAudit(path, false, 10, AuditHooks{}, auditFixedClock(auditT0))
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("p", 4000)
	for i := range 12 { // 1200 records, about 4.9 MB
		evs := make([]AuditEvent, 100)
		for k := range evs {
			evs[k] = auditEv(fmt.Sprint("a", i*100+k))
			evs[k].UserAgent = pad
		}
		if err := a.Append(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	b, err := openFileAudit(path, false, 10, AuditHooks{}, auditFixedClock(auditT0))
	if err != nil {
		t.Fatalf("reopen of a large file: %v", err)
	}
	if err := b.Append(context.Background(), auditEv("next")); err != nil {
		t.Fatal(err)
	}
	got, _ := b.Query(AuditQuery{Limit: 2})
	if got[0].Seq != 1201 || got[1].Action != "a1199" {
		t.Errorf("after reopen: newest seq %d, previous %q; want 1201, a1199", got[0].Seq, got[1].Action)
	}
	b.Close()
	data, _ := os.ReadFile(path)
	auditMustVerify(t, data)

	// Corrupt a record inside the window (but not the last): open refuses.
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	lines[1190] = bytes.Replace(lines[1190], []byte("alice"), []byte("alicf"), 1)
	os.WriteFile(path, auditJoin(lines), 0o600)
	if c, err := openFileAudit(path, false, 10, AuditHooks{}, nil); err == nil || !strings.Contains(err.Error(), "seq 1191") {
		if c != nil {
			c.Close()
		}
		t.Errorf("openFileAudit(corrupt seq 1191) error = %v; want it to name seq 1191", err)
	}
}

func TestFileAuditRepairsTornTail(t *testing.T) {
	for _, torn := range []string{"record prefix", "zeros"} {
		t.Run(torn, func(t *testing.T) {
			path, lines := auditWriteChain(t, 5)
			good := auditJoin(lines)
			frag := []byte(`{"id":"6c1d`)
			if torn == "zeros" {
				frag = make([]byte, 700)
			}
			os.WriteFile(path, append(bytes.Clone(good), frag...), 0o600)
			if _, bad, _ := verifyAuditFile(bytes.NewReader(append(bytes.Clone(good), frag...))); bad != 6 {
				t.Errorf("verify of torn file: first bad %d; want 6", bad)
			}
			a, err := openFileAudit(path, true, 100, AuditHooks{}, auditFixedClock(auditT0))
			if err != nil {
				t.Fatalf("openFileAudit(torn tail): %v", err)
			}
			side := fmt.Sprintf("%s.torn-%d", path, len(good))
			if msg := a.RepairedTail(); !strings.Contains(msg, side) || !strings.Contains(msg, "seq 6") {
				t.Errorf("RepairedTail() = %q; want it to name %s and seq 6", msg, side)
			}
			if err := a.Append(context.Background(), auditEv("after")); err != nil {
				t.Fatal(err)
			}
			a.Close()
			saved, err := os.ReadFile(side)
			if err != nil || !bytes.Equal(saved, frag) {
				t.Errorf("saved torn bytes = %q, %v; want %q", saved, err, frag)
			}
			data, _ := os.ReadFile(path)
			if n := auditMustVerify(t, data); n != 7 {
				t.Errorf("records = %d; want 7 (5 + repair event + 1)", n)
			}
			evs := auditParseLines(t, data)
			if ev := evs[5]; ev.Action != "audit_tail_repaired" || ev.EventType != EventSecurity || ev.Metadata["torn_bytes"] != fmt.Sprint(len(frag)) {
				t.Errorf("record 6 = %s %s %v; want a security audit_tail_repaired event", ev.EventType, ev.Action, ev.Metadata)
			}
		})
	}
}

func TestFileAuditLocksFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := openFileAudit(path, true, 10, AuditHooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if b, err := openFileAudit(path, true, 10, AuditHooks{}, nil); err == nil || !strings.Contains(err.Error(), "locked") {
		if b != nil {
			b.Close()
		}
		t.Errorf("second openFileAudit of one file = %v; want a lock error", err)
	}
}

func TestFileAuditConcurrentAppends(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		t.Run(fmt.Sprint("fsync=", fsync), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			a, err := openFileAudit(path, fsync, 10000, AuditHooks{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			const workers, appends, perAppend = 16, 40, 3
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range appends {
						evs := make([]AuditEvent, perAppend)
						for k := range evs {
							evs[k] = auditEv(fmt.Sprintf("w%d-a%d-k%d", w, i, k))
						}
						if err := a.Append(context.Background(), evs...); err != nil {
							t.Errorf("Append: %v", err)
						}
					}
				})
			}
			wg.Wait()
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			if n := auditMustVerify(t, data); n != workers*appends*perAppend {
				t.Fatalf("records = %d; want %d", n, workers*appends*perAppend)
			}
			evs := auditParseLines(t, data)
			lastOf := map[int]int{} // worker → last append index seen
			for i := 0; i < len(evs); i += perAppend {
				var w, n int
				fmt.Sscanf(evs[i].Action, "w%d-a%d-k0", &w, &n)
				for k := range perAppend {
					if want := fmt.Sprintf("w%d-a%d-k%d", w, n, k); evs[i+k].Action != want || evs[i+k].Seq != uint64(i+k+1) {
						t.Fatalf("record %d = %q seq %d; want %q seq %d (one Append contiguous, in order)", i+k, evs[i+k].Action, evs[i+k].Seq, want, i+k+1)
					}
				}
				if prev, ok := lastOf[w]; ok && n != prev+1 {
					t.Errorf("worker %d: append %d after %d", w, n, prev)
				}
				lastOf[w] = n
			}
		})
	}
}

func TestFileAuditGroupCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &auditFakeFile{syncGate: make(chan struct{})}
		a := auditStartFake(t, f, true, AuditHooks{})
		const n = 20
		var wg sync.WaitGroup
		appendOne := func(i int) {
			wg.Go(func() {
				if err := a.Append(context.Background(), auditEv(fmt.Sprint("c", i))); err != nil {
					t.Errorf("Append: %v", err)
				}
			})
		}
		appendOne(0)
		synctest.Wait() // the first group's fsync is held...
		for i := 1; i < n; i++ {
			appendOne(i)
		}
		synctest.Wait() // ...and every other Append queues behind it
		if got := len(a.queue); got != n-1 {
			t.Fatalf("queued batches while the first fsync hangs = %d; want %d", got, n-1)
		}
		close(f.syncGate)
		wg.Wait()
		data, syncs := f.snapshot()
		if syncs != 2 {
			t.Errorf("fsyncs for %d concurrent Appends = %d; want 2 (the first, then one for the %d queued)", n, syncs, n-1)
		}
		if got := auditMustVerify(t, data); got != n {
			t.Errorf("records = %d; want %d", got, n)
		}
		a.Close()
	})
}

func TestFileAuditFsyncPolicy(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		f := &auditFakeFile{}
		a := auditStartFake(t, f, fsync, AuditHooks{})
		for i := range 3 {
			if err := a.Append(context.Background(), auditEv(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		_, syncs := f.snapshot()
		want := 0
		if fsync {
			want = 3
		}
		if syncs != want {
			t.Errorf("fsync=%v: syncs after 3 sequential Appends = %d; want %d", fsync, syncs, want)
		}
		a.Close()
		if _, syncs := f.snapshot(); syncs != want+1 || !f.closed {
			t.Errorf("fsync=%v: Close made %d syncs (closed %v); want one final fsync and close", fsync, syncs-want, f.closed)
		}
	}
}
