package main

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseIncidentFilter(t *testing.T) {
	since := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		query   string
		want    IncidentFilter
		wantErr string // substring naming the parameter; "" for success
	}{
		{"", IncidentFilter{Limit: 100}, ""},
		{"type=brute_force_attack&level=high&status=open&since=2025-03-01T10:00:00Z&limit=5",
			IncidentFilter{Type: IncidentBruteForce, Level: "high", Status: "open", Since: since, Limit: 5}, ""},
		{"status=false_positive", IncidentFilter{Status: "false_positive", Limit: 100}, ""},
		{"limit=5000", IncidentFilter{Limit: 1000}, ""},
		{"type=sql_injection", IncidentFilter{}, "type:"},
		{"level=severe", IncidentFilter{}, "level:"},
		{"status=closed", IncidentFilter{}, "status:"},
		{"since=yesterday", IncidentFilter{}, "since:"},
		{"limit=0", IncidentFilter{}, "limit:"},
		{"limit=-3", IncidentFilter{}, "limit:"},
		{"limit=ten", IncidentFilter{}, "limit:"},
		{"source=1.2.3.4", IncidentFilter{}, "source: unknown parameter"},
		{"level=high&level=low", IncidentFilter{}, "level: given 2 times"},
	}
	for _, tt := range tests {
		v, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseIncidentFilter(v)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseIncidentFilter(%q) error = %v; want one containing %q", tt.query, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseIncidentFilter(%q) = %+v, %v; want %+v", tt.query, got, err, tt.want)
		}
	}
}

func TestMonitorIncidentsFilter(t *testing.T) {
	m, clock, _ := newMonTest(t, MonitorSettings{})
	unauth := m.Unauthenticated("192.0.2.1", "POST /chat") // t0, low
	clock.advance(time.Hour)
	esc := m.PrivilegeEscalation("192.0.2.2", "u", "x") // t0+1h, critical
	clock.advance(time.Hour)
	hij := m.SessionHijack("192.0.2.3", "u", "s", "o") // t0+2h, high
	if _, err := m.UpdateStatus(esc.ID, "investigating"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    IncidentFilter
		want []string
	}{
		{"all newest first", IncidentFilter{}, []string{hij.ID, esc.ID, unauth.ID}},
		{"type", IncidentFilter{Type: IncidentSessionHijacking}, []string{hij.ID}},
		{"level", IncidentFilter{Level: "critical"}, []string{esc.ID}},
		{"status", IncidentFilter{Status: "open"}, []string{hij.ID, unauth.ID}},
		{"since", IncidentFilter{Since: monT0.Add(30 * time.Minute)}, []string{hij.ID, esc.ID}},
		{"limit", IncidentFilter{Limit: 2}, []string{hij.ID, esc.ID}},
		{"no match", IncidentFilter{Type: IncidentBruteForce}, []string{}},
	}
	for _, tt := range tests {
		got := monIDs(m.Incidents(tt.f))
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: Incidents(%+v) = %v; want %v", tt.name, tt.f, got, tt.want)
		}
	}

	// Since matches the last occurrence, so a continuing incident stays visible.
	clock.advance(time.Minute)
	m.Unauthenticated("192.0.2.3", "POST /chat")
	clock.advance(4 * time.Minute)
	again := m.Unauthenticated("192.0.2.3", "POST /chat")
	if got := monIDs(m.Incidents(IncidentFilter{Type: IncidentUnauthorizedAccess, Since: clock.now()})); len(got) != 1 || got[0] != again.ID {
		t.Errorf("since now = %v; want [%s]", got, again.ID)
	}

	// Returned incidents are copies.
	list := m.Incidents(IncidentFilter{Type: IncidentSessionHijacking})
	list[0].Metadata["count"] = "999"
	list[0].AffectedResources[0] = "changed"
	if fresh := m.Incidents(IncidentFilter{Type: IncidentSessionHijacking})[0]; fresh.Metadata["count"] != "1" || fresh.AffectedResources[0] != "session:s" {
		t.Errorf("changing a returned incident changed the store: %+v", fresh)
	}
}

func TestMonitorUpdateStatus(t *testing.T) {
	m, clock, log := newMonTest(t, MonitorSettings{})
	inc := m.PrivilegeEscalation("192.0.2.9", "u", "x")
	tests := []struct {
		status     string
		wantStatus string
		wantErr    error
	}{
		{"investigating", "investigating", nil},
		{"resolved", "resolved", nil},
		{"investigating", "investigating", nil}, // reopened by the operator
		{"false_positive", "false_positive", nil},
		{"open", "", ErrInvalidIncidentStatus},
		{"closed", "", ErrInvalidIncidentStatus},
		{"", "", ErrInvalidIncidentStatus},
	}
	for _, tt := range tests {
		clock.advance(time.Second)
		got, err := m.UpdateStatus(inc.ID, tt.status)
		if !errors.Is(err, tt.wantErr) {
			t.Fatalf("UpdateStatus(%q) error = %v; want %v", tt.status, err, tt.wantErr)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "investigating, resolved, false_positive") {
				t.Errorf("UpdateStatus(%q) error %q does not name the allowed values", tt.status, err)
			}
			continue
		}
		if got.Status != tt.wantStatus || got.ID != inc.ID {
			t.Errorf("UpdateStatus(%q) = %s %s; want %s", tt.status, got.ID, got.Status, tt.wantStatus)
		}
		if got.Metadata["status_changed_at"] != clock.now().Format(time.RFC3339Nano) {
			t.Errorf("status_changed_at = %q; want now", got.Metadata["status_changed_at"])
		}
	}
	if _, err := m.UpdateStatus("no-such-id", "resolved"); !errors.Is(err, ErrIncidentNotFound) {
		t.Errorf("UpdateStatus(unknown) error = %v; want ErrIncidentNotFound", err)
	}
	if calls, _ := log.snapshot(); len(calls) != 1 {
		t.Errorf("OnIncident calls = %d; want 1 (status changes are audited by the caller)", len(calls))
	}
}

func TestMonitorDashboard(t *testing.T) {
	m, clock, _ := newMonTest(t, MonitorSettings{})
	// 7 auth failures from one source at t0: brute force (high).
	for range 7 {
		m.AuthFailure("203.0.113.1", "", "bad")
	}
	m.Unauthenticated("203.0.113.1", "POST /chat")
	for i := range 12 { // 12 critical incidents, 12 sources
		clock.advance(time.Minute)
		m.PrivilegeEscalation("198.51.100."+strconv.Itoa(i), "u", "x")
	}
	m.ConfigTampering("changed", nil)
	clock.advance(23 * time.Hour)
	for range 3 {
		m.AuthFailure("192.0.2.77", "", "bad") // below threshold: no incident
	}
	old := m.Unauthenticated("192.0.2.78", "POST /chat")
	if _, err := m.UpdateStatus(old.ID, "resolved"); err != nil {
		t.Fatal(err)
	}

	d := m.Dashboard()
	if d.TotalIncidents != 16 || d.ActiveIncidents != 15 {
		t.Errorf("total, active = %d, %d; want 16, 15", d.TotalIncidents, d.ActiveIncidents)
	}
	if d.FailedAuth24h != 10 {
		t.Errorf("failed_auth_24h = %d; want 10", d.FailedAuth24h)
	}
	if d.UniqueAttackers24h != 14 {
		t.Errorf("unique_attackers_24h = %d; want 14 (config is no attacker)", d.UniqueAttackers24h)
	}
	wantThreat := map[string]int{"low": 2, "medium": 0, "high": 1, "critical": 13}
	for k, v := range wantThreat {
		if d.IncidentsByThreat[k] != v {
			t.Errorf("incidents_by_threat[%s] = %d; want %d", k, d.IncidentsByThreat[k], v)
		}
	}
	if len(d.IncidentsByType) != 10 || d.IncidentsByType[IncidentPrivilegeEscalation] != 12 || d.IncidentsByType[IncidentRateLimitAbuse] != 0 {
		t.Errorf("incidents_by_type = %v", d.IncidentsByType)
	}
	if len(d.TopAttackers) != 10 || d.TopAttackers[0] != (AttackerCount{"203.0.113.1", 2}) || d.TopAttackers[1].Source != "192.0.2.78" {
		t.Errorf("top_attackers = %v; want 203.0.113.1 (2) first, then by source", d.TopAttackers)
	}
	if len(d.RecentCritical) != 10 || d.RecentCritical[0].IncidentType != IncidentConfigTampering ||
		d.RecentCritical[1].Source != "198.51.100.11" {
		t.Errorf("recent_critical = %d, first %s; want 10 newest first", len(d.RecentCritical), d.RecentCritical[0].IncidentType)
	}

	// An hour and a minute later the t0 failures and sources fall out of 24 h.
	clock.advance(time.Hour + time.Minute)
	d = m.Dashboard()
	if d.FailedAuth24h != 3 || d.UniqueAttackers24h != 1 {
		t.Errorf("a day later: failed_auth_24h %d, unique_attackers_24h %d; want 3, 1", d.FailedAuth24h, d.UniqueAttackers24h)
	}

	// The JSON field names are the contract of DESIGN §3.
	raw, err := json.Marshal(newSecurityMonitor(MonitorSettings{}, MonitorHooks{}, nil).Dashboard())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"total_incidents":0`, `"active_incidents":0`, `"incidents_by_threat":{`, `"incidents_by_type":{`,
		`"failed_auth_24h":0`, `"unique_attackers_24h":0`, `"top_attackers":[]`, `"recent_critical":[]`} {
		if !strings.Contains(string(raw), f) {
			t.Errorf("dashboard JSON %s lacks %s", raw, f)
		}
	}
}

func TestIncidentJSON(t *testing.T) {
	m, _, _ := newMonTest(t, MonitorSettings{})
	raw, err := json.Marshal(m.ConfigTampering("reload disabled audit", nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"id":`, `"timestamp":"2025-03-01T12:00:00Z"`, `"incident_type":"configuration_tampering"`,
		`"threat_level":"critical"`, `"status":"open"`, `"source":"config"`, `"description":`, `"affected_resources":[]`,
		`"related_events":[]`, `"metadata":{`, `"action_taken":"recorded"`} {
		if !strings.Contains(string(raw), f) {
			t.Errorf("incident JSON %s lacks %s", raw, f)
		}
	}
}

// TestMonitorFalsePositiveLiftsItsBlock: marking an incident false_positive
// lifts the blocks it set; resolving keeps them; a block a later incident
// renewed stays.
func TestMonitorFalsePositiveLiftsItsBlock(t *testing.T) {
	m, clock, _ := newMonTest(t, MonitorSettings{AutoBlock: true})
	hij := m.SessionHijack("192.0.2.20", "mallory", "s", "alice")
	if blocked, _ := m.Blocked("192.0.2.20", "mallory"); !blocked {
		t.Fatal("session_hijacking with auto_block did not block")
	}
	if _, err := m.UpdateStatus(hij.ID, "resolved"); err != nil {
		t.Fatal(err)
	}
	if blocked, _ := m.Blocked("192.0.2.20", ""); !blocked {
		t.Fatal("resolving the incident lifted its block; it should run its course")
	}
	got, err := m.UpdateStatus(hij.ID, "false_positive")
	if err != nil {
		t.Fatal(err)
	}
	if blocked, _ := m.Blocked("192.0.2.20", ""); blocked {
		t.Error("false_positive left the source blocked")
	}
	if blocked, _ := m.Blocked("", "mallory"); blocked {
		t.Error("false_positive left the principal blocked")
	}
	if !strings.Contains(got.ActionTaken, "block lifted") {
		t.Errorf("action_taken %q does not say the block was lifted", got.ActionTaken)
	}

	// A block renewed by a later incident outlives the first one's
	// false_positive.
	first := m.PrivilegeEscalation("192.0.2.21", "eve", "x")
	clock.advance(time.Second)
	m.SessionHijack("192.0.2.21", "eve", "s2", "bob") // renews the source's block
	if _, err := m.UpdateStatus(first.ID, "false_positive"); err != nil {
		t.Fatal(err)
	}
	if blocked, _ := m.Blocked("192.0.2.21", ""); !blocked {
		t.Error("a false_positive lifted a block a later incident had renewed")
	}
}
