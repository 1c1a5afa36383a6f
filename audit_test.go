package main

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var auditT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// auditFixedClock returns a clock that is always t.
func auditFixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// auditBackends builds each backend for a test; the file one lives in a temp dir.
func auditBackends(t *testing.T) map[string]func(max int, hooks AuditHooks) AuditLog {
	t.Helper()
	return map[string]func(int, AuditHooks) AuditLog{
		"in_memory": func(max int, hooks AuditHooks) AuditLog {
			return newMemoryAudit(max, hooks, auditFixedClock(auditT0))
		},
		"file": func(max int, hooks AuditHooks) AuditLog {
			t.Helper()
			a, err := openFileAudit(filepath.Join(t.TempDir(), "audit.jsonl"), false, max, hooks, auditFixedClock(auditT0))
			if err != nil {
				t.Fatalf("openFileAudit: %v", err)
			}
			t.Cleanup(func() { a.Close() })
			return a
		},
	}
}

// auditSampleEvents are six events, one minute apart, identified by Resource r1..r6.
func auditSampleEvents() []AuditEvent {
	mk := func(i int, typ, sev, actor, action string, ok bool, ip, session string) AuditEvent {
		return AuditEvent{
			Timestamp: auditT0.Add(time.Duration(i-1) * time.Minute), EventType: typ, Severity: sev,
			Actor: actor, Action: action, Resource: "r" + string(rune('0'+i)), Success: ok,
			SourceIP: ip, SessionID: session, Metadata: map[string]string{"n": string(rune('0' + i))},
		}
	}
	return []AuditEvent{
		mk(1, EventAuthentication, SeverityInfo, "alice", "login", true, "10.0.0.1", "s1"),
		mk(2, EventAuthorization, SeverityWarning, "bob", "chat", false, "10.0.0.2", "s2"),
		mk(3, EventDataAccess, SeverityError, "alice", "read_session", true, "10.0.0.1", "s2"),
		mk(4, EventSecurity, SeverityCritical, "mallory", "prompt_injection", false, "10.0.0.3", "s3"),
		mk(5, EventLLMInteraction, SeverityInfo, "alice", "chat", true, "10.0.0.1", "s1"),
		mk(6, EventConfiguration, SeverityWarning, "admin", "reload", true, "127.0.0.1", ""),
	}
}

func auditResources(evs []AuditEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Resource
	}
	return out
}

func TestAuditQueryFilters(t *testing.T) {
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"r6", "r5", "r4", "r3", "r2", "r1"}},
		{"event_type=security", []string{"r4"}},
		{"event_type=data_access", []string{"r3"}},
		{"actor=alice", []string{"r5", "r3", "r1"}},
		{"action=chat", []string{"r5", "r2"}},
		{"success=false", []string{"r4", "r2"}},
		{"success=true", []string{"r6", "r5", "r3", "r1"}},
		{"min_severity=info", []string{"r6", "r5", "r4", "r3", "r2", "r1"}},
		{"min_severity=warning", []string{"r6", "r4", "r3", "r2"}},
		{"min_severity=error", []string{"r4", "r3"}},
		{"min_severity=critical", []string{"r4"}},
		{"source_ip=10.0.0.1", []string{"r5", "r3", "r1"}},
		{"session_id=s2", []string{"r3", "r2"}},
		{"since=2025-03-01T12:02:00Z", []string{"r6", "r5", "r4", "r3"}},
		{"until=2025-03-01T12:02:00Z", []string{"r2", "r1"}},
		{"since=2025-03-01T12:01:00Z&until=2025-03-01T12:04:00Z", []string{"r4", "r3", "r2"}},
		{"since=2025-03-01T13:01:00%2B01:00", []string{"r6", "r5", "r4", "r3", "r2"}}, // 12:01Z
		{"limit=2", []string{"r6", "r5"}},
		{"actor=alice&min_severity=error", []string{"r3"}},
		{"actor=alice&success=true&limit=1", []string{"r5"}},
		{"actor=nobody", []string{}},
	}
	for name, mk := range auditBackends(t) {
		t.Run(name, func(t *testing.T) {
			log := mk(100, AuditHooks{})
			// Appended in two calls to check ordering across Appends too.
			evs := auditSampleEvents()
			if err := log.Append(context.Background(), evs[:3]...); err != nil {
				t.Fatalf("Append: %v", err)
			}
			if err := log.Append(context.Background(), evs[3:]...); err != nil {
				t.Fatalf("Append: %v", err)
			}
			for _, tt := range tests {
				v, err := url.ParseQuery(tt.query)
				if err != nil {
					t.Fatalf("ParseQuery(%q): %v", tt.query, err)
				}
				q, err := parseAuditQuery(v)
				if err != nil {
					t.Fatalf("parseAuditQuery(%q): %v", tt.query, err)
				}
				got, err := log.Query(q)
				if err != nil {
					t.Fatalf("Query(%q): %v", tt.query, err)
				}
				if !slices.Equal(auditResources(got), tt.want) {
					t.Errorf("Query(%q) = %v; want %v", tt.query, auditResources(got), tt.want)
				}
			}
		})
	}
}

func TestAuditQueryReturnsCopies(t *testing.T) {
	for name, mk := range auditBackends(t) {
		t.Run(name, func(t *testing.T) {
			log := mk(10, AuditHooks{})
			md := map[string]string{"k": "v"}
			if err := log.Append(context.Background(), AuditEvent{EventType: EventSecurity, Metadata: md}); err != nil {
				t.Fatalf("Append: %v", err)
			}
			md["k"] = "changed by caller"
			got, _ := log.Query(AuditQuery{})
			got[0].Metadata["k"] = "changed by reader"
			again, _ := log.Query(AuditQuery{})
			if v := again[0].Metadata["k"]; v != "v" {
				t.Errorf("stored metadata k = %q; want %q", v, "v")
			}
		})
	}
}

func TestAuditQueryLimitDefaultAndClamp(t *testing.T) {
	log := newMemoryAudit(2000, AuditHooks{}, auditFixedClock(auditT0))
	evs := make([]AuditEvent, 1500)
	for i := range evs {
		evs[i] = AuditEvent{EventType: EventDataAccess}
	}
	if err := log.Append(context.Background(), evs...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	for _, tt := range []struct {
		limit, want int
	}{{0, 100}, {-5, 100}, {1, 1}, {1000, 1000}, {5000, 1000}} {
		got, err := log.Query(AuditQuery{Limit: tt.limit})
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		if len(got) != tt.want {
			t.Errorf("Query(Limit: %d) returned %d events; want %d", tt.limit, len(got), tt.want)
		}
	}
	if _, err := log.Query(AuditQuery{MinSeverity: "loud"}); err == nil {
		t.Errorf("Query(MinSeverity: loud) = nil error; want error")
	}
	if _, err := log.Query(AuditQuery{EventType: "nope"}); err == nil {
		t.Errorf("Query(EventType: nope) = nil error; want error")
	}
}

func TestParseAuditQuery(t *testing.T) {
	valid := []struct {
		query string
		check func(AuditQuery) bool
	}{
		{"", func(q AuditQuery) bool { return q.Limit == 100 && q.Success == nil && q.Since.IsZero() }},
		{"limit=5000", func(q AuditQuery) bool { return q.Limit == 1000 }},
		{"limit=7", func(q AuditQuery) bool { return q.Limit == 7 }},
		{"success=false", func(q AuditQuery) bool { return q.Success != nil && !*q.Success }},
		{"since=2025-03-01T12:00:00.5Z", func(q AuditQuery) bool { return q.Since.Equal(auditT0.Add(500 * time.Millisecond)) }},
		{"event_type=llm_interaction&min_severity=critical&actor=a&action=b&source_ip=c&session_id=d",
			func(q AuditQuery) bool {
				return q.EventType == EventLLMInteraction && q.MinSeverity == SeverityCritical &&
					q.Actor == "a" && q.Action == "b" && q.SourceIP == "c" && q.SessionID == "d"
			}},
	}
	for _, tt := range valid {
		v, _ := url.ParseQuery(tt.query)
		q, err := parseAuditQuery(v)
		if err != nil || !tt.check(q) {
			t.Errorf("parseAuditQuery(%q) = %+v, %v; want a valid query", tt.query, q, err)
		}
	}
	invalid := []struct {
		query, prefix string
	}{
		{"since=yesterday", "since: must be RFC 3339"},
		{"until=2025-03-01", "until: must be RFC 3339"},
		{"since=2025-03-02T00:00:00Z&until=2025-03-01T00:00:00Z", "until:"},
		{"limit=0", "limit:"},
		{"limit=-1", "limit:"},
		{"limit=ten", "limit:"},
		{"success=yes", "success:"},
		{"event_type=login", "event_type:"},
		{"min_severity=debug", "min_severity:"},
		{"actor=a&actor=b", "actor:"},
		{"user=alice", "user: unknown parameter"},
	}
	for _, tt := range invalid {
		v, _ := url.ParseQuery(tt.query)
		_, err := parseAuditQuery(v)
		if err == nil || !strings.HasPrefix(err.Error(), tt.prefix) {
			t.Errorf("parseAuditQuery(%q) error = %v; want one starting with %q", tt.query, err, tt.prefix)
		}
	}
}

func TestMemoryAuditEviction(t *testing.T) {
	var evicts atomic.Int64
	log := newMemoryAudit(3, AuditHooks{OnEvict: func() { evicts.Add(1) }}, auditFixedClock(auditT0))
	for i := range 5 {
		ev := AuditEvent{EventType: EventDataAccess, Resource: "r" + string(rune('1'+i))}
		if err := log.Append(context.Background(), ev); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	got, _ := log.Query(AuditQuery{})
	if want := []string{"r5", "r4", "r3"}; !slices.Equal(auditResources(got), want) {
		t.Errorf("Query() = %v; want %v", auditResources(got), want)
	}
	if got := log.Evicted(); got != 2 {
		t.Errorf("Evicted() = %d; want 2", got)
	}
	if got := evicts.Load(); got != 2 {
		t.Errorf("OnEvict calls = %d; want 2", got)
	}
	// One Append larger than the ring keeps its newest events.
	if err := log.Append(context.Background(), auditSampleEvents()...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	got, _ = log.Query(AuditQuery{})
	if want := []string{"r6", "r5", "r4"}; !slices.Equal(auditResources(got), want) {
		t.Errorf("after a big Append Query() = %v; want %v", auditResources(got), want)
	}
	if got := log.Evicted(); got != 8 {
		t.Errorf("Evicted() = %d; want 8", got)
	}
}

func TestAuditHooksOutsideLocks(t *testing.T) {
	for name, mk := range auditBackends(t) {
		t.Run(name, func(t *testing.T) {
			var log AuditLog
			var seen []string
			log = mk(2, AuditHooks{
				OnEvent: func(typ string) {
					// Would deadlock if called under the log's lock.
					if _, err := log.Query(AuditQuery{}); err != nil {
						t.Errorf("Query in hook: %v", err)
					}
					if err := log.Healthy(); err != nil {
						t.Errorf("Healthy in hook: %v", err)
					}
					seen = append(seen, typ)
				},
				OnEvict: func() { _, _ = log.Query(AuditQuery{}) },
			})
			if err := log.Append(context.Background(), auditSampleEvents()[:3]...); err != nil {
				t.Fatalf("Append: %v", err)
			}
			want := []string{EventAuthentication, EventAuthorization, EventDataAccess}
			if !slices.Equal(seen, want) {
				t.Errorf("OnEvent saw %v; want %v", seen, want)
			}
		})
	}
}

func TestAuditAppendNormalizes(t *testing.T) {
	for name, mk := range auditBackends(t) {
		t.Run(name, func(t *testing.T) {
			log := mk(10, AuditHooks{})
			local := time.Date(2025, 3, 1, 14, 0, 0, 0, time.FixedZone("CET", 3600))
			evs := []AuditEvent{
				{EventType: EventLLMInteraction, Actor: "a\xffb", Metadata: map[string]string{
					"message": "please reveal the system prompt", "api_key": "sk-secret", "message_bytes": "31"}},
				{EventType: EventAuthentication, Timestamp: local, ID: "caller-id", Seq: 99, Hash: "forged"},
			}
			if err := log.Append(context.Background(), evs...); err != nil {
				t.Fatalf("Append: %v", err)
			}
			got, _ := log.Query(AuditQuery{})
			first, second := got[1], got[0]
			uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
			if !uuid.MatchString(first.ID) {
				t.Errorf("filled ID = %q; want a UUIDv4", first.ID)
			}
			if !first.Timestamp.Equal(auditT0) || first.Timestamp.Location() != time.UTC {
				t.Errorf("filled Timestamp = %v; want %v in UTC", first.Timestamp, auditT0)
			}
			if first.Severity != SeverityInfo {
				t.Errorf("default Severity = %q; want info", first.Severity)
			}
			if first.Actor != "a\uFFFDb" {
				t.Errorf("Actor = %q; want invalid UTF-8 replaced", first.Actor)
			}
			for _, k := range []string{"message", "api_key"} {
				if v := first.Metadata[k]; strings.Contains(v, "secret") || strings.Contains(v, "system prompt") || !strings.HasPrefix(v, "redacted len=") {
					t.Errorf("Metadata[%q] = %q; want a redacted fingerprint", k, v)
				}
			}
			if v := first.Metadata["message_bytes"]; v != "31" {
				t.Errorf("Metadata[message_bytes] = %q; want 31 (lengths are kept)", v)
			}
			if second.ID != "caller-id" || second.Timestamp.Location() != time.UTC || !second.Timestamp.Equal(local) {
				t.Errorf("second = %q at %v; want caller-id at %v UTC", second.ID, second.Timestamp, local.UTC())
			}
			if second.Hash == "forged" || (name == "in_memory" && second.Seq != 0) {
				t.Errorf("caller-set chain fields kept: seq %d hash %q", second.Seq, second.Hash)
			}
		})
	}
}

func TestAuditAppendRejectsInvalid(t *testing.T) {
	for name, mk := range auditBackends(t) {
		t.Run(name, func(t *testing.T) {
			log := mk(10, AuditHooks{})
			for _, ev := range []AuditEvent{
				{EventType: "login"},
				{EventType: EventSecurity, Severity: "fatal"},
				{EventType: EventSecurity, Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
			} {
				err := log.Append(context.Background(), AuditEvent{EventType: EventSecurity}, ev)
				if !errors.Is(err, ErrAuditUnavailable) || !errors.Is(err, auditErrInvalidEvent) {
					t.Errorf("Append(%+v) = %v; want ErrAuditUnavailable and auditErrInvalidEvent", ev, err)
				}
			}
			if got, _ := log.Query(AuditQuery{}); len(got) != 0 {
				t.Errorf("after rejected Appends Query() has %d events; want 0 (all or nothing)", len(got))
			}
		})
	}
}

func TestAuditClose(t *testing.T) {
	for name, mk := range auditBackends(t) {
		t.Run(name, func(t *testing.T) {
			log := mk(10, AuditHooks{})
			if err := log.Append(context.Background(), AuditEvent{EventType: EventSecurity}); err != nil {
				t.Fatalf("Append: %v", err)
			}
			if err := log.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := log.Close(); err != nil {
				t.Errorf("second Close = %v; want nil", err)
			}
			err := log.Append(context.Background(), AuditEvent{EventType: EventSecurity})
			if !errors.Is(err, ErrAuditClosed) || !errors.Is(err, ErrAuditUnavailable) {
				t.Errorf("Append after Close = %v; want ErrAuditClosed wrapping ErrAuditUnavailable", err)
			}
			if err := log.Healthy(); !errors.Is(err, ErrAuditClosed) {
				t.Errorf("Healthy after Close = %v; want ErrAuditClosed", err)
			}
			if got, _ := log.Query(AuditQuery{}); len(got) != 1 {
				t.Errorf("Query after Close has %d events; want 1", len(got))
			}
		})
	}
}

func TestNewUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := newUUID()
		if !re.MatchString(id) {
			t.Fatalf("newUUID() = %q; want a lowercase UUIDv4", id)
		}
		if seen[id] {
			t.Fatalf("newUUID() repeated %q", id)
		}
		seen[id] = true
	}
}

// TestAuditPackRoundTrip: what the ring keeps unpacks to the event that was
// stored, for every field, long strings (multi-byte lengths) and empty ones.
func TestAuditPackRoundTrip(t *testing.T) {
	long := strings.Repeat("é", 300)
	for _, ev := range []AuditEvent{
		{},
		{
			ID: "id-1", Timestamp: time.Date(2026, 11, 29, 17, 4, 43, 123456789, time.UTC),
			EventType: EventSecurity, Severity: SeverityCritical, Actor: "user-7", Action: "security.block",
			Resource: long, Success: true, ErrorMessage: "boom", SourceIP: "203.0.113.9", UserAgent: "curl/8",
			SessionID: "s-1", RequestID: "req_1", TraceID: strings.Repeat("a", 32),
			Metadata: map[string]string{"k": "", "": "v", "long": long},
			Seq:      1<<40 + 3, PrevHash: strings.Repeat("0", 64), Hash: strings.Repeat("f", 64),
		},
		{Timestamp: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), EventType: EventAuthentication, Severity: SeverityInfo},
		{Timestamp: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), EventType: EventLLMInteraction, Severity: SeverityWarning},
		// As read back from a file someone else wrote: kept as it is.
		{Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 2*3600)), EventType: "login", Severity: "notice",
			Metadata: map[string]string{"k": "v"}},
		{Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", -90*60)), EventType: EventSecurity},
	} {
		if ev.EventType == "" {
			ev.EventType, ev.Severity = EventDataAccess, SeverityError
		}
		p := auditPack(&ev)
		if got := p.eventType(); got != ev.EventType {
			t.Errorf("eventType() = %q, want %q", got, ev.EventType)
		}
		if got := p.event(); !reflect.DeepEqual(got, ev) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, ev)
		}
		if got := p.field(apHash); got != ev.Hash {
			t.Errorf("field(apHash) = %q, want %q", got, ev.Hash)
		}
	}
}

// auditGateFile is a file whose writes say they have started (entered, once)
// and then wait until open is closed.
type auditGateFile struct {
	*os.File
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (f *auditGateFile) Write(p []byte) (int, error) {
	f.once.Do(func() { close(f.entered) })
	<-f.open
	return f.File.Write(p)
}

// TestAuditKeepsNoCallerMap: a caller may reuse its metadata map once Append
// has returned, even an Append that stopped waiting for a slow write; the
// stored event keeps the values it was given.
func TestAuditKeepsNoCallerMap(t *testing.T) {
	const key = "model" // not a secret-named key: normalising keeps the map as it is
	t.Run("memory", func(t *testing.T) {
		m := newMemoryAudit(10, AuditHooks{}, nil)
		md := map[string]string{key: "m1"}
		if err := m.Append(context.Background(), AuditEvent{EventType: EventLLMInteraction, Action: "llm.call", Metadata: md}); err != nil {
			t.Fatal(err)
		}
		md[key] = "changed"
		if evs, _ := m.Query(AuditQuery{}); len(evs) != 1 || evs[0].Metadata[key] != "m1" {
			t.Errorf("stored events %+v; want one with %s=m1", evs, key)
		}
	})
	t.Run("file, Append gave up waiting", func(t *testing.T) {
		f, err := auditOpen(filepath.Join(t.TempDir(), "audit.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		gate := &auditGateFile{File: f, entered: make(chan struct{}), open: make(chan struct{})}
		a := auditStart("test", gate, auditTail{hash: auditGenesisHash}, false, 100, AuditHooks{}, nil)
		md := map[string]string{key: "m1"}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- a.Append(ctx, AuditEvent{EventType: EventLLMInteraction, Action: "llm.call", Metadata: md})
		}()
		<-gate.entered // the writer holds the event, its write waits at the gate
		cancel()       // so Append stops waiting and returns
		if err := <-done; err == nil {
			t.Fatal("Append returned nil although its write had not happened")
		}
		md[key] = "changed" // the caller reuses its map...
		close(gate.open)    // ...before the writer is done with the event
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		evs, err := a.Query(AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Metadata[key] != "m1" {
			t.Errorf("stored events %+v; want one with %s=m1 as given to Append", evs, key)
		}
	})
}

// TestAuditTailKeptAsWritten: records read back from the tail of an audit
// file are served by Query as the file holds them, even with an event type,
// severity or zone offset this service would not write.
func TestAuditTailKeptAsWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", 2*3600))
	body, err := auditEncodeBody(AuditEvent{ID: "i1", Timestamp: ts, EventType: "login", Severity: "notice", Actor: "a"})
	if err != nil {
		t.Fatal(err)
	}
	line, _ := auditSeal(nil, body, 1, auditGenesisHash)
	if err := os.WriteFile(path, line, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := openFileAudit(path, false, 10, AuditHooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	evs, err := a.Query(AuditQuery{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("query: %v, %d events", err, len(evs))
	}
	ev := evs[0]
	if _, off := ev.Timestamp.Zone(); ev.EventType != "login" || ev.Severity != "notice" || !ev.Timestamp.Equal(ts) || off != 2*3600 {
		t.Errorf("served %q %q %v; want login, notice and the time with its +02:00 offset", ev.EventType, ev.Severity, ev.Timestamp)
	}
	for _, q := range []AuditQuery{{EventType: EventAuthentication}, {MinSeverity: SeverityInfo}} {
		if got, _ := a.Query(q); len(got) != 0 {
			t.Errorf("Query(%+v) matched the foreign record: %+v", q, got)
		}
	}
}

// TestFileAuditBoundsItsWait: an Append whose context has no deadline gives
// up after auditMaxWait when the disk does not answer, failing closed, and
// the writer finishes the batch once the disk comes back.
func TestFileAuditBoundsItsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, err := auditOpen(filepath.Join(t.TempDir(), "audit.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		gate := &auditGateFile{File: f, entered: make(chan struct{}), open: make(chan struct{})}
		a := auditStart("test", gate, auditTail{hash: auditGenesisHash}, false, 10, AuditHooks{}, nil)
		start := time.Now()
		err = a.Append(context.Background(), AuditEvent{EventType: EventDataAccess, Action: "x"})
		if !errors.Is(err, ErrAuditUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Append with a stuck disk = %v; want audit unavailable after its deadline", err)
		}
		if waited := time.Since(start); waited != auditMaxWait {
			t.Errorf("Append waited %v; want auditMaxWait (%v)", waited, auditMaxWait)
		}
		close(gate.open)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if evs, _ := a.Query(AuditQuery{}); len(evs) != 1 {
			t.Errorf("%d events after the disk came back; want the batch written", len(evs))
		}
	})
}
