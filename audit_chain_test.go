package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// auditWriteChain writes n records through the file backend and returns the
// file's path and its lines (each without "\n").
func auditWriteChain(t *testing.T, n int) (string, [][]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := openFileAudit(path, false, 10, AuditHooks{}, auditFixedClock(auditT0))
	if err != nil {
		t.Fatalf("openFileAudit: %v", err)
	}
	for i := range n {
		ev := AuditEvent{EventType: EventDataAccess, Actor: "alice", Action: "read", Resource: "r" + string(rune('a'+i%26)),
			Success: true, Metadata: map[string]string{"i": string(rune('0' + i%10))}}
		if err := a.Append(context.Background(), ev); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	return path, bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func auditJoin(lines [][]byte) []byte {
	return append(bytes.Join(lines, []byte("\n")), '\n')
}

func TestAuditSealMatchesMarshal(t *testing.T) {
	evs := []AuditEvent{
		{ID: "x", Timestamp: auditT0, EventType: EventSecurity, Severity: SeverityInfo},
		{ID: newUUID(), Timestamp: auditT0.Add(123456789), EventType: EventLLMInteraction, Severity: SeverityCritical,
			Actor: "<script>&", Action: "ünïcode ✓", Resource: "\"quoted\"\n", Success: true, ErrorMessage: "boom",
			SourceIP: "::1", UserAgent: "curl/8", SessionID: "s", RequestID: "r", TraceID: "t",
			Metadata: map[string]string{"z": "1", "a": "2", "m": "<>"}},
	}
	for _, ev := range evs {
		body, err := auditEncodeBody(ev)
		if err != nil {
			t.Fatalf("auditEncodeBody: %v", err)
		}
		line, hash := auditSeal(nil, body, 42, auditGenesisHash)
		full := ev
		full.Seq, full.PrevHash, full.Hash = 42, auditGenesisHash, hash
		want, _ := json.Marshal(full)
		if got := string(line); got != string(want)+"\n" {
			t.Errorf("auditSeal line =\n%s\nwant json.Marshal =\n%s", got, want)
		}
		if _, reason := auditCheckLine(line[:len(line)-1], 42, auditGenesisHash); reason != "" {
			t.Errorf("auditCheckLine(sealed line) = %q; want valid", reason)
		}
	}
}

// TestAuditHashReimplementation recomputes a hash the way the format comment
// tells an auditor to: SHA-256 of prev_hash's hex text followed by the line
// without its hash member.
func TestAuditHashReimplementation(t *testing.T) {
	_, lines := auditWriteChain(t, 3)
	prev := auditGenesisHash
	for i, line := range lines {
		var rec struct {
			Seq      uint64 `json:"seq"`
			PrevHash string `json:"prev_hash"`
			Hash     string `json:"hash"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		member := `,"hash":"` + rec.Hash + `"`
		canonical := strings.Replace(string(line), member, "", 1)
		sum := sha256.Sum256([]byte(prev + canonical))
		if got := hex.EncodeToString(sum[:]); got != rec.Hash || rec.PrevHash != prev || rec.Seq != uint64(i+1) {
			t.Errorf("line %d: recomputed hash %s, prev %s, seq %d; want hash %s, prev %s, seq %d", i+1, got, rec.PrevHash, rec.Seq, rec.Hash, prev, i+1)
		}
		prev = rec.Hash
	}
}

func TestVerifyAuditFileDetectsTampering(t *testing.T) {
	_, lines := auditWriteChain(t, 30)
	clone := func() [][]byte {
		out := make([][]byte, len(lines))
		for i, l := range lines {
			out[i] = bytes.Clone(l)
		}
		return out
	}
	// rehash replaces record i (0-based) by ev re-sealed onto the true chain:
	// what a forger who knows the format would write.
	rehash := func(ls [][]byte, i int, edit func(*AuditEvent)) {
		var ev AuditEvent
		if err := json.Unmarshal(ls[i], &ev); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		edit(&ev)
		body, _ := auditEncodeBody(ev)
		line, _ := auditSeal(nil, body, ev.Seq, ev.PrevHash)
		ls[i] = line[:len(line)-1]
	}
	tests := []struct {
		name        string
		data        func() []byte
		wantRecords uint64
		wantBad     uint64
	}{
		{"intact", func() []byte { return auditJoin(lines) }, 30, 0},
		{"empty file", func() []byte { return nil }, 0, 0},
		{"edit a field", func() []byte {
			ls := clone()
			ls[16] = bytes.Replace(ls[16], []byte(`"actor":"alice"`), []byte(`"actor":"alicf"`), 1)
			return auditJoin(ls)
		}, 16, 17},
		{"edit success flag", func() []byte {
			ls := clone()
			ls[0] = bytes.Replace(ls[0], []byte(`"success":true`), []byte(`"success":false`), 1)
			return auditJoin(ls)
		}, 0, 1},
		{"edit and recompute own hash", func() []byte {
			ls := clone()
			rehash(ls, 16, func(ev *AuditEvent) { ev.Actor = "mallory" })
			return auditJoin(ls)
		}, 17, 18},
		{"delete a line", func() []byte {
			ls := clone()
			return auditJoin(append(ls[:16], ls[17:]...))
		}, 16, 17},
		{"delete the first line", func() []byte { return auditJoin(clone()[1:]) }, 0, 1},
		{"swap two lines", func() []byte {
			ls := clone()
			ls[16], ls[17] = ls[17], ls[16]
			return auditJoin(ls)
		}, 16, 17},
		{"duplicate a line", func() []byte {
			ls := clone()
			return auditJoin(append(ls[:17], ls[16:]...))
		}, 17, 18},
		{"truncate mid-line in the middle", func() []byte {
			data := auditJoin(lines[:16])
			return append(data, lines[16][:40]...)
		}, 16, 17},
		{"truncate mid-line at the end", func() []byte {
			data := auditJoin(lines)
			return data[:len(data)-10]
		}, 29, 30},
		{"final newline removed", func() []byte {
			data := auditJoin(lines)
			return data[:len(data)-1]
		}, 29, 30},
		{"reformatted line", func() []byte {
			ls := clone()
			ls[4] = bytes.Replace(ls[4], []byte(`,"actor":`), []byte(`, "actor":`), 1)
			return auditJoin(ls)
		}, 4, 5},
		{"added field", func() []byte {
			ls := clone()
			ls[4] = bytes.Replace(ls[4], []byte(`{"id":`), []byte(`{"note":"x","id":`), 1)
			return auditJoin(ls)
		}, 4, 5},
		{"blank line", func() []byte {
			ls := clone()
			return auditJoin(append(ls[:10], append([][]byte{{}}, ls[10:]...)...))
		}, 10, 11},
		{"trailing garbage line", func() []byte { return append(auditJoin(lines), "junk\n"...) }, 30, 31},
	}
	for _, tt := range tests {
		records, bad, err := verifyAuditFile(bytes.NewReader(tt.data()))
		if records != tt.wantRecords || bad != tt.wantBad {
			t.Errorf("%s: verifyAuditFile = %d records, first bad %d (%v); want %d, %d", tt.name, records, bad, err, tt.wantRecords, tt.wantBad)
		}
		if (err != nil) != (tt.wantBad != 0) || (err != nil && !errors.Is(err, auditErrChainBroken)) {
			t.Errorf("%s: verifyAuditFile error = %v; want a chain error iff first bad != 0", tt.name, err)
		}
	}
}

func TestVerifyAuditFileOverlongLine(t *testing.T) {
	_, lines := auditWriteChain(t, 2)
	data := append(auditJoin(lines), bytes.Repeat([]byte("x"), auditMaxRecordBytes+10)...)
	records, bad, err := verifyAuditFile(bytes.NewReader(append(data, '\n')))
	if records != 2 || bad != 3 || err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("verifyAuditFile(overlong third line) = %d, %d, %v; want 2, 3, a length error", records, bad, err)
	}
}

func TestRunAuditVerify(t *testing.T) {
	path, lines := auditWriteChain(t, 5)
	var out, errOut bytes.Buffer
	if err := runAuditVerify([]string{path}, &out, &errOut); err != nil {
		t.Fatalf("runAuditVerify(intact) = %v; want nil", err)
	}
	if got := out.String(); !strings.HasPrefix(got, "ok: 5 records, chain intact") {
		t.Errorf("runAuditVerify(intact) printed %q; want it to start with %q", got, "ok: 5 records, chain intact")
	}

	lines[2], lines[3] = lines[3], lines[2]
	if err := os.WriteFile(path, auditJoin(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := runAuditVerify([]string{path}, &out, &errOut)
	if err == nil {
		t.Errorf("runAuditVerify(swapped) = nil; want an error")
	}
	if got := out.String(); !strings.HasPrefix(got, "FAILED: chain broken at seq 3 (") {
		t.Errorf("runAuditVerify(swapped) printed %q; want FAILED at seq 3", got)
	}

	for _, args := range [][]string{nil, {"a", "b"}, {filepath.Join(t.TempDir(), "missing.jsonl")}, {"-bogus"}} {
		if err := runAuditVerify(args, &out, &errOut); err == nil {
			t.Errorf("runAuditVerify(%q) = nil; want an error", args)
		}
	}
}

func TestAuditTimestampRoundTrip(t *testing.T) {
	// Timestamps with and without fractional seconds must re-encode to the
	// same bytes after parsing, or verification would fail on good records.
	for _, ts := range []time.Time{auditT0, auditT0.Add(1), auditT0.Add(100 * time.Millisecond), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)} {
		ev := AuditEvent{ID: "x", Timestamp: ts, EventType: EventSecurity, Severity: SeverityInfo}
		body, _ := auditEncodeBody(ev)
		line, _ := auditSeal(nil, body, 1, auditGenesisHash)
		if _, reason := auditCheckLine(line[:len(line)-1], 1, auditGenesisHash); reason != "" {
			t.Errorf("timestamp %v: auditCheckLine = %q; want valid", ts, reason)
		}
	}
}
