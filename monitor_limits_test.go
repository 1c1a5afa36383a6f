package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMonitorAutoBlock(t *testing.T) {
	m, clock, log := newMonTest(t, MonitorSettings{AutoBlock: true, BlockDuration: 900 * time.Second})
	var inc *Incident
	for range 5 {
		inc = m.AuthFailure("203.0.113.7", "", "bad")
	}
	if inc.ActionTaken != "blocked source for 900s" {
		t.Errorf("ActionTaken = %q; want blocked source for 900s", inc.ActionTaken)
	}
	_, blocks := log.snapshot()
	if len(blocks) != 1 || blocks[0].source != "203.0.113.7" || blocks[0].principal != "" || !blocks[0].until.Equal(monT0.Add(900*time.Second)) {
		t.Fatalf("OnBlock = %v; want 203.0.113.7 until t0+900s", blocks)
	}
	steps := []struct {
		after     time.Duration
		blocked   bool
		wantRetry time.Duration
	}{
		{0, true, 900 * time.Second}, {899 * time.Second, true, time.Second}, {time.Second, false, 0},
	}
	for _, s := range steps {
		clock.advance(s.after)
		blocked, retry := m.Blocked("203.0.113.7", "")
		if blocked != s.blocked || retry != s.wantRetry {
			t.Errorf("Blocked at t0+%v = %v, %v; want %v, %v", clock.now().Sub(monT0), blocked, retry, s.blocked, s.wantRetry)
		}
	}
	if blocked, _ := m.Blocked("203.0.113.8", "someone"); blocked {
		t.Errorf("an uninvolved source is blocked")
	}

	// Principal blocking follows the principal to another address.
	inc = m.PrivilegeEscalation("198.51.100.7", "eve", "role user called GET /audit")
	if inc.ActionTaken != "request rejected (403); blocked source and principal for 900s" {
		t.Errorf("ActionTaken = %q", inc.ActionTaken)
	}
	if blocked, retry := m.Blocked("192.0.2.200", "eve"); !blocked || retry != 900*time.Second {
		t.Errorf("Blocked(other address, eve) = %v, %v; want true, 900s", blocked, retry)
	}

	// Medium incidents never block; a disabled AutoBlock never blocks.
	m.PromptInjection("192.0.2.50", "frank", 0.9, nil, false, false, "block")
	if blocked, _ := m.Blocked("192.0.2.50", "frank"); blocked {
		t.Errorf("a medium incident blocked its source")
	}
	m2, _, log2 := newMonTest(t, MonitorSettings{})
	m2.PrivilegeEscalation("198.51.100.7", "eve", "x")
	if blocked, _ := m2.Blocked("198.51.100.7", "eve"); blocked {
		t.Errorf("blocked without AutoBlock")
	}
	if _, b := log2.snapshot(); len(b) != 0 {
		t.Errorf("OnBlock without AutoBlock: %v", b)
	}

	// Configuration tampering is critical but has no source to block.
	before := len(blocks)
	m.ConfigTampering("auth disabled by reload", nil)
	if _, b := log.snapshot(); len(b) != before+1 { // +1: eve above
		t.Errorf("OnBlock calls = %d; want %d (tampering blocks nothing)", len(b), before+1)
	}
	if blocked, _ := m.Blocked("config", ""); blocked {
		t.Errorf("config tampering blocked the config source")
	}

	// An attack continuing after its block lapsed is blocked again.
	m3, clock3, log3 := newMonTest(t, MonitorSettings{AutoBlock: true, BlockDuration: 60 * time.Second})
	for range 5 {
		m3.AuthFailure("203.0.113.9", "", "bad")
	}
	clock3.advance(61 * time.Second)
	m3.AuthFailure("203.0.113.9", "", "bad")
	if blocked, _ := m3.Blocked("203.0.113.9", ""); !blocked {
		t.Errorf("continued attack after the block lapsed is not blocked again")
	}
	if _, b := log3.snapshot(); len(b) != 2 {
		t.Errorf("OnBlock calls = %d; want 2", len(b))
	}
}

func TestMonitorDisabled(t *testing.T) {
	called := false
	hooks := MonitorHooks{
		OnIncident: func(Incident, bool) { called = true },
		OnBlock:    func(string, string, time.Time) { called = true },
	}
	m := newSecurityMonitor(MonitorSettings{Enabled: false, AutoBlock: true}, hooks, func() time.Time { return monT0 })
	signals := map[string]func() *Incident{
		"AuthFailure":         func() *Incident { return m.AuthFailure("1.2.3.4", "x", "bad") },
		"Unauthenticated":     func() *Incident { return m.Unauthenticated("1.2.3.4", "POST /chat") },
		"RateLimited":         func() *Incident { return m.RateLimited("ip", "1.2.3.4", "1.2.3.4") },
		"PromptInjection":     func() *Incident { return m.PromptInjection("1.2.3.4", "p", 1, nil, true, true, "block") },
		"SessionHijack":       func() *Incident { return m.SessionHijack("1.2.3.4", "p", "s", "o") },
		"PrivilegeEscalation": func() *Incident { return m.PrivilegeEscalation("1.2.3.4", "p", "d") },
		"Access":              func() *Incident { return m.Access("1.2.3.4", "p") },
		"DataExfiltration":    func() *Incident { return m.DataExfiltration("1.2.3.4", "p", []string{"jwt"}) },
		"ConfigTampering":     func() *Incident { return m.ConfigTampering("d", nil) },
	}
	for name, f := range signals {
		for range 200 {
			if inc := f(); inc != nil {
				t.Fatalf("%s on a disabled monitor = %+v; want nil", name, inc)
			}
		}
	}
	if blocked, _ := m.Blocked("1.2.3.4", "p"); blocked || called {
		t.Errorf("disabled monitor: blocked %v, hooks called %v; want neither", blocked, called)
	}
	if d := m.Dashboard(); d.TotalIncidents != 0 || d.FailedAuth24h != 0 {
		t.Errorf("Dashboard = %+v; want empty", d)
	}
}

func TestMonitorStoreEviction(t *testing.T) {
	m, _, _ := newMonTest(t, MonitorSettings{MaxIncidents: 3})
	ids := make([]string, 0, 5)
	add := func(src string) {
		ids = append(ids, m.Unauthenticated(src, "POST /chat").ID)
	}
	add("10.1.0.1")
	add("10.1.0.2")
	add("10.1.0.3")
	if _, err := m.UpdateStatus(ids[1], "false_positive"); err != nil {
		t.Fatal(err)
	}
	add("10.1.0.4") // evicts the false positive, though it is not the oldest
	want := []string{ids[3], ids[2], ids[0]}
	if got := monIDs(m.Incidents(IncidentFilter{})); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after closed eviction: %v; want %v", got, want)
	}
	add("10.1.0.5") // nothing closed: the oldest goes
	want = []string{ids[4], ids[3], ids[2]}
	if got := monIDs(m.Incidents(IncidentFilter{})); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after oldest eviction: %v; want %v", got, want)
	}
	if _, err := m.UpdateStatus(ids[0], "investigating"); !errors.Is(err, ErrIncidentNotFound) {
		t.Errorf("UpdateStatus(evicted) = %v; want ErrIncidentNotFound", err)
	}
	if again := m.Unauthenticated("10.1.0.1", "POST /chat"); again.ID == ids[0] || again.Metadata["count"] != "1" {
		t.Errorf("evicted source: %+v; want a fresh incident", again)
	}
}

func monIDs(incs []Incident) []string {
	ids := make([]string, len(incs))
	for i, inc := range incs {
		ids[i] = inc.ID
	}
	return ids
}

func TestMonitorBoundedKeyTracking(t *testing.T) {
	if d := newSecurityMonitor(MonitorSettings{}, MonitorHooks{}, nil); d.maxKeys != 100_000 {
		t.Errorf("default key bound = %d; want 100000", d.maxKeys)
	}
	m, clock, _ := newMonTest(t, MonitorSettings{AutoBlock: true, MaxIncidents: 500})
	m.maxKeys = 1000
	const sources = 100_000
	for i := range sources {
		src := fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)
		m.AuthFailure(src, "u", "bad")
		m.RateLimited("ip", src, src)
		m.Access(src, "p"+strconv.Itoa(i))
		if i%20 == 0 {
			m.PrivilegeEscalation(src, "p"+strconv.Itoa(i), "x") // blocks source and principal
		}
		if i%1000 == 0 {
			clock.advance(time.Millisecond)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, n := range map[string]int{"auth": m.auth.len(), "rate": m.rate.len(), "access": m.access.len(), "blocks": m.blocks.len()} {
		if n > 1000 {
			t.Errorf("%s tracks %d keys; want at most 1000", name, n)
		}
	}
	if n := len(m.byID); n > 500 || m.openList.Len()+m.closedList.Len() != n || len(m.dedup) > n {
		t.Errorf("store = %d records, lists %d+%d, dedup %d; want ≤ 500 and consistent",
			n, m.openList.Len(), m.closedList.Len(), len(m.dedup))
	}
}

func TestMonitorConcurrent(t *testing.T) {
	clock := &monClock{t: monT0}
	var m *SecurityMonitor
	var hookCalls sync.WaitGroup
	hooks := MonitorHooks{
		// Hooks run outside the lock: calling back must not deadlock.
		OnIncident: func(inc Incident, _ bool) { m.Blocked(inc.Source, "") },
		OnBlock:    func(source, _ string, _ time.Time) { m.Incidents(IncidentFilter{Limit: 1}) },
	}
	m = newSecurityMonitor(MonitorSettings{Enabled: true, AutoBlock: true, MaxIncidents: 200}, hooks, clock.now)
	for g := range 32 {
		hookCalls.Add(1)
		go func() {
			defer hookCalls.Done()
			for i := range 300 {
				src := fmt.Sprintf("10.0.%d.%d", g, i%7)
				switch i % 10 {
				case 0:
					m.AuthFailure(src, "u"+strconv.Itoa(i%6), "bad")
				case 1:
					m.Unauthenticated(src, "POST /chat")
				case 2:
					m.RateLimited("principal", "p"+strconv.Itoa(g), src)
				case 3:
					m.Access(src, "p"+strconv.Itoa(i%3))
				case 4:
					if inc := m.PromptInjection(src, "p", 0.8, []string{"x"}, i%2 == 0, false, "flag"); inc != nil {
						m.UpdateStatus(inc.ID, "resolved")
					}
				case 5:
					m.Blocked(src, "p"+strconv.Itoa(g))
				case 6:
					m.Dashboard()
				case 7:
					m.Incidents(IncidentFilter{Type: IncidentBruteForce})
				case 8:
					m.DataExfiltration(src, "p", []string{"jwt"})
					clock.advance(time.Second)
				case 9:
					m.SessionHijack(src, "p", "s", "o")
				}
			}
		}()
	}
	hookCalls.Wait()
	d := m.Dashboard()
	if d.TotalIncidents == 0 || d.TotalIncidents > 200 {
		t.Errorf("TotalIncidents = %d; want 1..200", d.TotalIncidents)
	}
	sum := 0
	for _, n := range d.IncidentsByType {
		sum += n
	}
	if sum != d.TotalIncidents {
		t.Errorf("sum by type = %d; want %d", sum, d.TotalIncidents)
	}
}

func TestMonNewID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := make(map[string]bool)
	for range 1000 {
		id := monNewID()
		if !re.MatchString(id) || seen[id] {
			t.Fatalf("monNewID() = %q; want a fresh lowercase UUIDv4", id)
		}
		seen[id] = true
	}
}

func TestMonClip(t *testing.T) {
	s := strings.Repeat("é", 200) // 400 bytes
	got := monClip(s)
	if len(got) > monMaxValueLen || !strings.HasPrefix(s, got) || len(got)%2 != 0 {
		t.Errorf("monClip cut %d bytes into a rune; got %d bytes", len(s), len(got))
	}
	if monClip("short") != "short" {
		t.Errorf("monClip changed a short string")
	}
}
