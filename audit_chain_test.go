package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
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

// auditV1Line seals ev the way records were written before error_message
// and metadata were always present (auditEventV1: both left out when
// empty) and returns the line (without "\n") and its hash.
func auditV1Line(t *testing.T, ev AuditEvent, seq uint64, prev string) ([]byte, string) {
	t.Helper()
	ev.Seq, ev.PrevHash, ev.Hash = seq, prev, ""
	canonical, err := json.Marshal(auditEventV1(ev))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append([]byte(prev), canonical...))
	ev.Hash = hex.EncodeToString(sum[:])
	line, err := json.Marshal(auditEventV1(ev))
	if err != nil {
		t.Fatal(err)
	}
	return line, ev.Hash
}

// TestAuditRecordShape: every record, in the file and from the in-memory
// backend, has every field of DESIGN §8, error_message and metadata even
// when empty; the file adds seq, prev_hash and hash.
func TestAuditRecordShape(t *testing.T) {
	design := []string{"id", "timestamp", "event_type", "severity", "actor", "action", "resource", "success",
		"error_message", "source_ip", "user_agent", "session_id", "request_id", "trace_id", "metadata"}
	keysOf := func(b []byte) []string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		if string(m["metadata"]) != "{}" || string(m["error_message"]) != `""` {
			t.Errorf("metadata %s, error_message %s; want {} and \"\" for a record without them", m["metadata"], m["error_message"])
		}
		keys := slices.Collect(maps.Keys(m))
		slices.Sort(keys)
		return keys
	}
	want := slices.Sorted(slices.Values(design))
	ev := AuditEvent{EventType: EventDataAccess, Actor: "alice", Action: "read", Resource: "r", Success: true}

	path := filepath.Join(t.TempDir(), "audit.jsonl")
	fa, err := openFileAudit(path, false, 10, AuditHooks{}, auditFixedClock(auditT0))
	if err != nil {
		t.Fatal(err)
	}
	if err := fa.Append(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	fa.Close()
	data, _ := os.ReadFile(path)
	wantFile := slices.Sorted(slices.Values(append(slices.Clone(design), "seq", "prev_hash", "hash")))
	if got := keysOf(bytes.TrimSpace(data)); !slices.Equal(got, wantFile) {
		t.Errorf("file record keys %v; want %v", got, wantFile)
	}

	ma := newMemoryAudit(10, AuditHooks{}, auditFixedClock(auditT0))
	if err := ma.Append(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	evs, err := ma.Query(AuditQuery{Limit: 1})
	if err != nil || len(evs) != 1 {
		t.Fatalf("Query: %v %v", evs, err)
	}
	b, _ := json.Marshal(evs[0])
	if got := keysOf(b); !slices.Equal(got, want) {
		t.Errorf("in-memory record keys %v; want %v", got, want)
	}
}

// TestAuditLegacyLinesVerifyAndContinue: a file written before every field
// was always present verifies, is continued on open, and the whole file,
// old lines and new, verifies after.
func TestAuditLegacyLinesVerifyAndContinue(t *testing.T) {
	var lines [][]byte
	prev := auditGenesisHash
	for i := range 3 {
		ev := AuditEvent{ID: newUUID(), Timestamp: auditT0.Add(time.Duration(i) * time.Second), EventType: EventDataAccess,
			Severity: SeverityInfo, Actor: "alice", Action: "read", Resource: "r", Success: i != 1}
		if i == 1 {
			ev.ErrorMessage = "denied"
		}
		if i == 2 {
			ev.Metadata = map[string]string{"k": "v"}
		}
		var line []byte
		line, prev = auditV1Line(t, ev, uint64(i+1), prev)
		lines = append(lines, line)
	}
	if bytes.Contains(lines[0], []byte("error_message")) || bytes.Contains(lines[0], []byte("metadata")) {
		t.Fatalf("legacy line has the fields it should lack: %s", lines[0])
	}
	if n, bad, err := verifyAuditFile(bytes.NewReader(auditJoin(lines))); n != 3 || bad != 0 || err != nil {
		t.Fatalf("verify legacy file: %d records, bad %d, %v", n, bad, err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, auditJoin(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	fa, err := openFileAudit(path, false, 10, AuditHooks{}, auditFixedClock(auditT0.Add(time.Hour)))
	if err != nil {
		t.Fatalf("open legacy file: %v", err)
	}
	if err := fa.Append(context.Background(), AuditEvent{EventType: EventDataAccess, Actor: "bob", Action: "read", Resource: "r", Success: true}); err != nil {
		t.Fatal(err)
	}
	fa.Close()
	data, _ := os.ReadFile(path)
	if n, bad, err := verifyAuditFile(bytes.NewReader(data)); n != 4 || bad != 0 || err != nil {
		t.Fatalf("verify continued file: %d records, bad %d, %v\n%s", n, bad, err, data)
	}
	if last := bytes.Split(bytes.TrimSpace(data), []byte("\n"))[3]; !bytes.Contains(last, []byte(`"error_message":"","source_ip"`)) ||
		!bytes.Contains(last, []byte(`"metadata":{},"seq":4`)) {
		t.Errorf("new record is not in the current shape: %s", last)
	}
	// A legacy line edited after the fact still fails.
	tampered := bytes.Replace(auditJoin(lines), []byte(`"actor":"alice"`), []byte(`"actor":"mallo"`), 1)
	if _, bad, err := verifyAuditFile(bytes.NewReader(tampered)); bad != 1 || err == nil {
		t.Errorf("edited legacy line: bad %d, %v; want record 1 reported", bad, err)
	}
}
