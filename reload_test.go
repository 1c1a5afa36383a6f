package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConfig writes the seed config.toml with replacements applied.
func writeConfig(t *testing.T, path string, replace ...string) {
	t.Helper()
	seed, err := os.ReadFile("config.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(seed)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("config.toml has no %q", replace[i])
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tamperIncidents(a *app) []Incident {
	return a.monitor.Incidents(IncidentFilter{Type: IncidentConfigTampering, Limit: 100})
}

func TestConfigFileTamperingIsReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.toml")
	writeConfig(t, path)
	env := map[string]string{"AGENT_CONFIG": path}
	a, _ := newTestApp(t, newFakeClock().Now, env)
	rl := newReloader(a, envFunc(env), nil, new(slog.LevelVar))
	if rl.checkFile() || len(tamperIncidents(a)) != 0 {
		t.Fatal("an unchanged file was reported")
	}
	writeConfig(t, path, "rate_limit_burst = 20", "rate_limit_burst = 99999")
	if rl.checkFile() {
		t.Fatal("a change was reported at its first sighting (a SIGHUP may still come)")
	}
	if !rl.checkFile() {
		t.Fatal("a change still unaccounted for at the next check was not reported")
	}
	incs := tamperIncidents(a)
	if len(incs) != 1 || incs[0].ThreatLevel != "critical" {
		t.Fatalf("incidents = %+v; want one critical configuration_tampering", incs)
	}
	if rl.checkFile() {
		t.Error("the same change was reported twice")
	}
	os.Remove(path)
	if rl.checkFile(); !rl.checkFile() {
		t.Error("a removed config file was not reported")
	}
}

func TestSIGHUPReloadAppliesOnlySafeSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.toml")
	writeConfig(t, path)
	env := map[string]string{"AGENT_CONFIG": path}
	clk := newFakeClock()
	a, srv := newTestApp(t, clk.Now, env)
	lv := new(slog.LevelVar)
	rl := newReloader(a, envFunc(env), nil, lv)

	writeConfig(t, path, "rate_limit_burst = 20", "rate_limit_burst = 2",
		`tracing_level = "info"`, `tracing_level = "debug"`, "max_sessions = 10000", "max_sessions = 5")
	rl.checkFile() // the watcher sees the edit before the operator's SIGHUP
	if err := rl.reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if lv.Level() != slog.LevelDebug {
		t.Errorf("log level = %v; want debug", lv.Level())
	}
	statuses := []int{}
	for i := 0; i < 3; i++ {
		statuses = append(statuses, postChat(t, srv.URL, "u", "s", "Hello").status)
	}
	if statuses[0] != 200 || statuses[1] != 200 || statuses[2] != 429 {
		t.Errorf("statuses with reloaded burst 2 = %v; want 200 200 429", statuses)
	}
	if rl.checkFile() || rl.checkFile() {
		t.Error("a reloaded file was reported as tampering")
	}
	ev, _ := a.audit.Query(AuditQuery{Action: "configuration.reload", Limit: 5})
	if len(ev) != 1 || !strings.Contains(ev[0].Metadata["applied"], "resilience.rate_limit_burst") ||
		!strings.Contains(ev[0].Metadata["needs_restart"], "sessions.max_sessions") {
		t.Errorf("reload audit = %+v", ev)
	}
}

func TestReloadThatDisablesProtectionIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.toml")
	writeConfig(t, path)
	env := map[string]string{"AGENT_CONFIG": path}
	a, _ := newTestApp(t, newFakeClock().Now, env)
	rl := newReloader(a, envFunc(env), nil, new(slog.LevelVar))
	writeConfig(t, path, "# detect security incidents\nenabled = true", "# detect security incidents\nenabled = false", "rate_limit_burst = 20", "rate_limit_burst = 1")
	err := rl.reload(context.Background())
	if !errors.Is(err, errReloadRefused) || !strings.Contains(err.Error(), "security.enabled") {
		t.Fatalf("reload = %v; want refusal naming security.enabled", err)
	}
	incs := tamperIncidents(a)
	if len(incs) != 1 || incs[0].ThreatLevel != "critical" {
		t.Errorf("incidents = %+v; want one critical configuration_tampering", incs)
	}
	if got := a.guards.principalLimiter.Load().DecideAt("x", t0).Limit; got != 20 {
		t.Errorf("refused reload changed the burst to %d", got)
	}
	if rl.checkFile() {
		t.Error("the refused file was reported a second time")
	}
}
