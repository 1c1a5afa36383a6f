package main

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var monT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// monClock is a fake clock safe for concurrent use.
type monClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *monClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *monClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// monHookLog records hook calls.
type monHookLog struct {
	mu        sync.Mutex
	incidents []monHookIncident
	blocks    []monHookBlock
}

type monHookIncident struct {
	inc   Incident
	isNew bool
}

type monHookBlock struct {
	source, principal string
	until             time.Time
}

func (l *monHookLog) hooks() MonitorHooks {
	return MonitorHooks{
		OnIncident: func(inc Incident, isNew bool) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.incidents = append(l.incidents, monHookIncident{inc, isNew})
		},
		OnBlock: func(source, principal string, until time.Time) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.blocks = append(l.blocks, monHookBlock{source, principal, until})
		},
	}
}

func (l *monHookLog) snapshot() ([]monHookIncident, []monHookBlock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]monHookIncident(nil), l.incidents...), append([]monHookBlock(nil), l.blocks...)
}

// newMonTest returns an enabled monitor with settings s on a fake clock at
// monT0, and its hook log.
func newMonTest(t *testing.T, s MonitorSettings) (*SecurityMonitor, *monClock, *monHookLog) {
	t.Helper()
	s.Enabled = true
	clock := &monClock{t: monT0}
	log := &monHookLog{}
	return newSecurityMonitor(s, log.hooks(), clock.now), clock, log
}

// monWant checks an incident's type and level ("" type: want nil).
func monWant(t *testing.T, what string, got *Incident, typ, level string) {
	t.Helper()
	switch {
	case typ == "" && got != nil:
		t.Fatalf("%s = %s/%s; want no incident", what, got.IncidentType, got.ThreatLevel)
	case typ == "":
	case got == nil:
		t.Fatalf("%s = nil; want %s/%s", what, typ, level)
	case got.IncidentType != typ || got.ThreatLevel != level:
		t.Fatalf("%s = %s/%s; want %s/%s", what, got.IncidentType, got.ThreatLevel, typ, level)
	}
}

func TestMonitorBruteForceThresholds(t *testing.T) {
	tests := []struct {
		failures  int
		threshold int
		wantLevel string // "" for no incident
	}{
		{4, 0, ""}, {5, 0, monHigh}, {20, 0, monHigh}, {21, 0, monCritical}, {40, 0, monCritical},
		{9, 10, ""}, {10, 10, monHigh}, {40, 10, monHigh}, {41, 10, monCritical},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_of_%d", tt.failures, tt.threshold), func(t *testing.T) {
			m, clock, _ := newMonTest(t, MonitorSettings{BruteForceThreshold: tt.threshold})
			var got *Incident
			for range tt.failures {
				got = m.AuthFailure("203.0.113.9", "", "invalid_key")
				clock.advance(time.Second)
			}
			typ := IncidentBruteForce
			if tt.wantLevel == "" {
				typ = ""
			}
			monWant(t, "AuthFailure", got, typ, tt.wantLevel)
			if got != nil && got.Source != "203.0.113.9" {
				t.Errorf("Source = %q; want 203.0.113.9", got.Source)
			}
		})
	}
}

func TestMonitorBruteForceWindowExpires(t *testing.T) {
	m, clock, _ := newMonTest(t, MonitorSettings{})
	for range 4 {
		monWant(t, "failure", m.AuthFailure("198.51.100.1", "", "bad"), "", "")
	}
	clock.advance(301 * time.Second) // the first four are now outside the 300 s window
	for i := range 4 {
		monWant(t, fmt.Sprintf("failure %d after the window", i+1), m.AuthFailure("198.51.100.1", "", "bad"), "", "")
	}
	clock.advance(299 * time.Second) // still inside the window of the last four
	inc := m.AuthFailure("198.51.100.1", "", "bad")
	monWant(t, "fifth failure in window", inc, IncidentBruteForce, monHigh)
	if got := inc.Metadata["failures_in_window"]; got != "5" {
		t.Errorf("failures_in_window = %q; want 5", got)
	}
}

func TestMonitorCredentialStuffing(t *testing.T) {
	// A high brute-force threshold isolates credential stuffing.
	m, _, _ := newMonTest(t, MonitorSettings{BruteForceThreshold: 100})
	for i := range 4 {
		monWant(t, "identity "+strconv.Itoa(i), m.AuthFailure("192.0.2.7", "user"+strconv.Itoa(i), "bad"), "", "")
	}
	for range 10 { // repeating one identity is not stuffing
		monWant(t, "repeated identity", m.AuthFailure("192.0.2.7", "user0", "bad"), "", "")
	}
	monWant(t, "identity with no name", m.AuthFailure("192.0.2.7", "", "bad"), "", "")
	monWant(t, "other source", m.AuthFailure("192.0.2.8", "user4", "bad"), "", "")
	inc := m.AuthFailure("192.0.2.7", "user4", "bad")
	monWant(t, "fifth identity", inc, IncidentCredentialStuffing, monHigh)
	if got := inc.Metadata["distinct_identities"]; got != "5" {
		t.Errorf("distinct_identities = %q; want 5", got)
	}

	// Identities older than the window are forgotten.
	m2, clock2, _ := newMonTest(t, MonitorSettings{BruteForceThreshold: 100})
	for i := range 4 {
		m2.AuthFailure("192.0.2.7", "old"+strconv.Itoa(i), "bad")
	}
	clock2.advance(301 * time.Second)
	monWant(t, "after the window", m2.AuthFailure("192.0.2.7", "new", "bad"), "", "")

	// With the default threshold both fire on the fifth identity; the
	// stuffing incident is returned on the tie.
	m3, _, log := newMonTest(t, MonitorSettings{})
	for i := range 5 {
		inc = m3.AuthFailure("192.0.2.9", "u"+strconv.Itoa(i), "bad")
	}
	monWant(t, "fifth failure", inc, IncidentCredentialStuffing, monHigh)
	if got, _ := log.snapshot(); len(got) != 2 {
		t.Errorf("OnIncident calls = %d; want 2 (brute force and credential stuffing)", len(got))
	}
}

func TestMonitorDedupAndEscalation(t *testing.T) {
	m, clock, log := newMonTest(t, MonitorSettings{})
	var first *Incident
	for i := 1; i <= 25; i++ {
		inc := m.AuthFailure("203.0.113.5", "", "bad")
		if i == 5 {
			first = inc
		}
		if i >= 5 && inc.ID != first.ID {
			t.Fatalf("failure %d: id %s; want the incident %s folded into", i, inc.ID, first.ID)
		}
		if i == 21 {
			if inc.ThreatLevel != monCritical {
				t.Fatalf("failure 21: level %s; want critical", inc.ThreatLevel)
			}
			if got := inc.Metadata["count"]; got != "17" {
				t.Errorf("failure 21: count %q; want 17 (occurrences 5..21)", got)
			}
			if got, want := inc.Metadata["last_seen"], clock.now().UTC().Format(time.RFC3339Nano); got != want {
				t.Errorf("last_seen = %q; want %q", got, want)
			}
			if !inc.Timestamp.Equal(first.Timestamp) {
				t.Errorf("Timestamp = %v; want first seen %v", inc.Timestamp, first.Timestamp)
			}
		}
		clock.advance(time.Second)
	}
	calls, _ := log.snapshot()
	if len(calls) != 2 {
		t.Fatalf("OnIncident calls = %d; want 2 (created, escalated)", len(calls))
	}
	if !calls[0].isNew || calls[0].inc.ThreatLevel != monHigh {
		t.Errorf("call 1 = new %v level %s; want new high", calls[0].isNew, calls[0].inc.ThreatLevel)
	}
	if calls[1].isNew || calls[1].inc.ThreatLevel != monCritical || calls[1].inc.ID != first.ID {
		t.Errorf("call 2 = new %v level %s; want escalation of %s to critical", calls[1].isNew, calls[1].inc.ThreatLevel, first.ID)
	}
	if n := len(m.Incidents(IncidentFilter{})); n != 1 {
		t.Errorf("stored incidents = %d; want 1", n)
	}
}

func TestMonitorUnauthorizedAggregated(t *testing.T) {
	m, clock, log := newMonTest(t, MonitorSettings{})
	a := m.Unauthenticated("192.0.2.1", "POST /chat")
	clock.advance(time.Minute)
	b := m.Unauthenticated("192.0.2.1", "GET /sessions/{id}")
	clock.advance(299 * time.Second) // 299 s after the last one: same window
	c := m.Unauthenticated("192.0.2.1", "POST /chat")
	monWant(t, "first", a, IncidentUnauthorizedAccess, monLow)
	if a.ID != b.ID || b.ID != c.ID {
		t.Fatalf("ids %s %s %s; want one aggregated incident", a.ID, b.ID, c.ID)
	}
	if got := c.Metadata["count"]; got != "3" {
		t.Errorf("count = %q; want 3", got)
	}
	if got := strings.Join(c.AffectedResources, "|"); got != "POST /chat|GET /sessions/{id}" {
		t.Errorf("AffectedResources = %q; want both routes once", got)
	}
	if other := m.Unauthenticated("192.0.2.2", "POST /chat"); other.ID == a.ID {
		t.Errorf("another source folded into %s; want its own incident", a.ID)
	}
	clock.advance(301 * time.Second)
	if d := m.Unauthenticated("192.0.2.1", "POST /chat"); d.ID == a.ID {
		t.Errorf("after the window: id %s; want a new incident", d.ID)
	}
	if calls, _ := log.snapshot(); len(calls) != 3 {
		t.Errorf("OnIncident calls = %d; want 3 (one per incident)", len(calls))
	}
}

func TestMonitorResolvedIsNotReopened(t *testing.T) {
	m, _, _ := newMonTest(t, MonitorSettings{})
	a := m.Unauthenticated("192.0.2.1", "POST /chat")
	if _, err := m.UpdateStatus(a.ID, "resolved"); err != nil {
		t.Fatal(err)
	}
	b := m.Unauthenticated("192.0.2.1", "POST /chat")
	if b.ID == a.ID || b.Status != "open" || b.Metadata["count"] != "1" {
		t.Errorf("after resolve: id %s status %s count %s; want a new open incident", b.ID, b.Status, b.Metadata["count"])
	}
}

func TestMonitorRateLimitAbuse(t *testing.T) {
	m, clock, log := newMonTest(t, MonitorSettings{AutoBlock: true})
	for range 99 {
		monWant(t, "below threshold", m.RateLimited("ip", "192.0.2.3", "192.0.2.3"), "", "")
	}
	inc := m.RateLimited("ip", "192.0.2.3", "192.0.2.3")
	monWant(t, "100th rejection", inc, IncidentRateLimitAbuse, monMedium)
	if _, blocks := log.snapshot(); len(blocks) != 0 {
		t.Errorf("medium incident blocked: %v", blocks)
	}

	// 60 rejections a minute never reach 100 within a minute.
	m2, clock2, _ := newMonTest(t, MonitorSettings{})
	for i := range 600 {
		monWant(t, "slow rejection "+strconv.Itoa(i), m2.RateLimited("principal", "alice", "192.0.2.4"), "", "")
		clock2.advance(time.Second)
	}

	// Sustained abuse (20 rejections every 10 s) escalates after 5 minutes.
	first := inc
	for step := 1; step <= 30; step++ {
		clock.advance(10 * time.Second)
		for range 20 {
			inc = m.RateLimited("ip", "192.0.2.3", "192.0.2.3")
		}
		if inc.ID != first.ID {
			t.Fatalf("step %d: new incident %s; want %s continued", step, inc.ID, first.ID)
		}
		want := monMedium
		if step >= 30 {
			want = monHigh
		}
		if inc.ThreatLevel != want {
			t.Fatalf("after %ds: level %s; want %s", step*10, inc.ThreatLevel, want)
		}
	}
	calls, blocks := log.snapshot()
	if last := calls[len(calls)-1]; last.isNew || last.inc.ThreatLevel != monHigh {
		t.Errorf("last OnIncident = new %v %s; want escalation to high", last.isNew, last.inc.ThreatLevel)
	}
	if len(blocks) != 1 || blocks[0].source != "192.0.2.3" {
		t.Errorf("blocks = %v; want 192.0.2.3 blocked on escalation", blocks)
	}

	// A lull longer than a minute ends the streak and the incident.
	clock.advance(2 * time.Minute)
	for range 100 {
		inc = m.RateLimited("ip", "192.0.2.3", "192.0.2.3")
	}
	if inc.ID == first.ID || inc.ThreatLevel != monMedium {
		t.Errorf("after a lull: id %s level %s; want a new medium incident", inc.ID, inc.ThreatLevel)
	}
}

func TestMonitorPromptInjection(t *testing.T) {
	tests := []struct {
		name               string
		invisible, encoded bool
		action             string
		wantLevel          string
		wantAction         string
	}{
		{"plain block", false, false, "block", monMedium, "request rejected (400)"},
		{"plain flag", false, false, "flag", monMedium, "request flagged"},
		{"invisible", true, false, "block", monHigh, "request rejected (400)"},
		{"encoded", false, true, "flag", monHigh, "request flagged"},
		{"both", true, true, "block", monHigh, "request rejected (400)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, _ := newMonTest(t, MonitorSettings{})
			inc := m.PromptInjection("192.0.2.5", "bob", 0.93, []string{"override", "role_play"}, tt.invisible, tt.encoded, tt.action)
			monWant(t, "PromptInjection", inc, IncidentPromptInjection, tt.wantLevel)
			if inc.ActionTaken != tt.wantAction {
				t.Errorf("ActionTaken = %q; want %q", inc.ActionTaken, tt.wantAction)
			}
			if inc.Metadata["principal"] != "bob" || inc.Metadata["signals"] != "override,role_play" || inc.Metadata["score"] != "0.930" {
				t.Errorf("Metadata = %v; want principal, signals and score", inc.Metadata)
			}
		})
	}
}

func TestMonitorSingleShotTypes(t *testing.T) {
	m, _, _ := newMonTest(t, MonitorSettings{})
	inc := m.SessionHijack("192.0.2.6", "mallory", "sess-1", "alice")
	monWant(t, "SessionHijack", inc, IncidentSessionHijacking, monHigh)
	if inc.AffectedResources[0] != "session:sess-1" || inc.Metadata["owner"] != "alice" || inc.Metadata["principal"] != "mallory" {
		t.Errorf("session hijack = %+v; want session, owner and principal", inc)
	}
	inc = m.PrivilegeEscalation("192.0.2.6", "mallory", "role user called GET /audit")
	monWant(t, "PrivilegeEscalation", inc, IncidentPrivilegeEscalation, monCritical)
	if !strings.Contains(inc.Description, "GET /audit") || inc.ActionTaken != "request rejected (403)" {
		t.Errorf("privilege escalation = %+v", inc)
	}
	inc = m.DataExfiltration("192.0.2.6", "mallory", []string{"aws_access_key", "jwt"})
	monWant(t, "DataExfiltration", inc, IncidentDataExfiltration, monHigh)
	if inc.ActionTaken != "response redacted" || inc.Metadata["kinds"] != "aws_access_key,jwt" {
		t.Errorf("data exfiltration = %+v", inc)
	}
	inc = m.ConfigTampering("config file changed on disk", map[string]string{"path": "/etc/agent/config.toml"})
	monWant(t, "ConfigTampering", inc, IncidentConfigTampering, monCritical)
	if inc.Source != "config" || inc.Metadata["path"] != "/etc/agent/config.toml" {
		t.Errorf("config tampering = %+v", inc)
	}
}

func TestMonitorAnomalousAccess(t *testing.T) {
	m, _, _ := newMonTest(t, MonitorSettings{})
	monWant(t, "no principal", m.Access("10.0.0.99", ""), "", "")
	for i := 1; i <= 5; i++ {
		monWant(t, "source "+strconv.Itoa(i), m.Access("10.0.0."+strconv.Itoa(i), "carol"), "", "")
		monWant(t, "same source again", m.Access("10.0.0."+strconv.Itoa(i), "carol"), "", "")
	}
	inc := m.Access("10.0.0.6", "carol")
	monWant(t, "sixth source", inc, IncidentAnomalousAccess, monMedium)
	if inc.Source != "10.0.0.6" || inc.Metadata["principal"] != "carol" || inc.Metadata["distinct_sources"] != "6" {
		t.Errorf("anomalous access = %+v", inc)
	}
	if again := m.Access("10.0.0.7", "carol"); again.ID != inc.ID {
		t.Errorf("seventh source: id %s; want %s (per principal)", again.ID, inc.ID)
	}

	m2, clock2, _ := newMonTest(t, MonitorSettings{AnomalousSources: 2, AnomalousWindow: time.Minute})
	m2.Access("10.0.0.1", "dave")
	m2.Access("10.0.0.2", "dave")
	clock2.advance(61 * time.Second)
	monWant(t, "after the window", m2.Access("10.0.0.3", "dave"), "", "")
	monWant(t, "third in window", m2.Access("10.0.0.4", "dave"), "", "")
	monWant(t, "fourth in window", m2.Access("10.0.0.5", "dave"), IncidentAnomalousAccess, monMedium)
}
