package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"
)

// configWatchInterval is how often the config file is compared with the
// one loaded at startup. Tampering is reported within this delay; reading a
// small file this often costs nothing measurable.
const configWatchInterval = 5 * time.Second

// reloader re-reads the configuration on SIGHUP and watches the file for
// changes made behind the operator's back (configuration_tampering).
//
// Only the safe settings are applied without a restart: the token-bucket
// limits and the log level (and the API keys file is re-read). A reload
// that would disable auth, audit or the security monitor is refused and
// raised as a critical incident, as is any change of the file on disk that
// no reload accounted for.
type reloader struct {
	a         *app
	getenv    func(string) string
	overrides []string
	level     *slog.LevelVar

	mu       sync.Mutex
	current  *Config // the configuration in effect
	baseline string  // SHA-256 of the file as last accepted ("" when no file)
	pending  string  // a differing hash seen once, not yet reported
	reported string  // the last unexpected hash already reported
}

func newReloader(a *app, getenv func(string) string, overrides []string, level *slog.LevelVar) *reloader {
	return &reloader{a: a, getenv: getenv, overrides: overrides, level: level, current: a.cfg, baseline: a.cfg.FileSHA256}
}

// newLeveledLogger is the JSON logger whose level SIGHUP can change.
func newLeveledLogger(w io.Writer, level string) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lv.Set(parseLevel(level))
	return slog.New(newTraceHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv}))), lv
}

func parseLevel(level string) slog.Level {
	switch level {
	case "trace", "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// fileUnreadable stands for the hash of a config file that is gone.
const fileUnreadable = "unreadable"

// fileSHA256 hashes the file at path (fileUnreadable when it cannot be read).
func fileSHA256(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fileUnreadable
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// checkFile compares the config file with the accepted one and reports a
// change once per distinct content. A change is reported only when a second
// check still finds it unaccounted for, so an operator who edits the file
// and sends SIGHUP (within configWatchInterval) raises nothing. It returns
// whether it raised an incident.
func (rl *reloader) checkFile() bool {
	rl.mu.Lock()
	path := rl.current.Path
	rl.mu.Unlock()
	if path == "" {
		return false
	}
	now := fileSHA256(path)
	rl.mu.Lock()
	baseline := rl.baseline
	switch {
	case now == baseline:
		rl.pending = ""
		rl.mu.Unlock()
		return false
	case now == rl.reported:
		rl.mu.Unlock()
		return false
	case now != rl.pending:
		rl.pending = now
		rl.mu.Unlock()
		return false
	}
	rl.reported, rl.pending = now, ""
	rl.mu.Unlock()
	state := "changed"
	if now == fileUnreadable {
		state = "removed or unreadable"
	}
	rl.tampered("the configuration file was "+state+" on disk after startup", map[string]string{
		"path": path, "loaded_sha256": baseline, "current_sha256": now,
	})
	return true
}

func (rl *reloader) tampered(detail string, meta map[string]string) {
	rl.a.logger.Error("configuration tampering", "detail", detail)
	rl.a.monitor.ConfigTampering(detail, meta)
}

// watch runs checkFile every configWatchInterval until ctx ends.
func (rl *reloader) watch(ctx context.Context) {
	t := time.NewTicker(configWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rl.checkFile()
		}
	}
}

// protections are the switches a reload may never turn off.
var protections = []struct {
	key string
	on  func(*Config) bool
}{
	{"auth.enabled", func(c *Config) bool { return c.Auth.Enabled }},
	{"audit.enabled", func(c *Config) bool { return c.Audit.Enabled }},
	{"security.enabled", func(c *Config) bool { return c.Security.Enabled }},
}

// errReloadRefused: the new configuration would weaken the service.
var errReloadRefused = errors.New("reload refused")

// reload re-reads the configuration (SIGHUP) and applies its safe part.
func (rl *reloader) reload(ctx context.Context) error {
	a := rl.a
	rl.mu.Lock()
	defer rl.mu.Unlock()
	next, err := loadConfig(rl.current.Path, rl.getenv, rl.overrides)
	if err != nil {
		a.logger.Error("configuration reload failed; keeping the running configuration", "error", err.Error())
		a.recordSystem(ctx, AuditEvent{EventType: EventConfiguration, Severity: SeverityError,
			Action: "configuration.reload", Resource: "config", ErrorMessage: err.Error()})
		return err
	}
	var disabled []string
	for _, p := range protections {
		if p.on(rl.current) && !p.on(next) {
			disabled = append(disabled, p.key)
		}
	}
	if len(disabled) > 0 {
		detail := "a configuration reload tried to disable " + strings.Join(disabled, ", ")
		rl.reported = next.FileSHA256
		rl.a.logger.Error("configuration tampering", "detail", detail)
		a.monitor.ConfigTampering(detail, map[string]string{"path": next.Path, "disabled": strings.Join(disabled, ",")})
		a.recordSystem(ctx, AuditEvent{EventType: EventConfiguration, Severity: SeverityCritical,
			Action: "configuration.reload", Resource: "config", ErrorMessage: detail,
			Metadata: map[string]string{"refused": strings.Join(disabled, ",")}})
		return fmt.Errorf("%w: %s", errReloadRefused, detail)
	}
	applied, ignored := diffConfig(rl.current, next)
	if next.Resilience != rl.current.Resilience {
		a.guards.setLimits(next.Resilience, a.now)
	}
	rl.level.Set(parseLevel(next.Observability.TracingLevel))
	keysErr := a.auth.ReloadKeys()
	// Only the applied settings change; the rest waits for a restart.
	cur := *rl.current
	cur.Resilience.RateLimitEnabled = next.Resilience.RateLimitEnabled
	cur.Resilience.RateLimitRequestsPerSecond = next.Resilience.RateLimitRequestsPerSecond
	cur.Resilience.RateLimitBurst = next.Resilience.RateLimitBurst
	cur.Resilience.IPRateLimitEnabled = next.Resilience.IPRateLimitEnabled
	cur.Resilience.IPRateLimitRequestsPerSecond = next.Resilience.IPRateLimitRequestsPerSecond
	cur.Resilience.IPRateLimitBurst = next.Resilience.IPRateLimitBurst
	cur.Observability.TracingLevel = next.Observability.TracingLevel
	cur.Path, cur.FileSHA256 = next.Path, next.FileSHA256
	rl.current = &cur
	rl.baseline, rl.pending = next.FileSHA256, ""
	meta := map[string]string{"applied": strings.Join(applied, ","), "needs_restart": strings.Join(ignored, ","), "sha256": next.FileSHA256}
	if keysErr != nil {
		meta["api_keys_error"] = keysErr.Error()
	}
	a.logger.Info("configuration reloaded", "applied", applied, "needs_restart", ignored)
	a.recordSystem(ctx, AuditEvent{EventType: EventConfiguration, Severity: SeverityInfo,
		Action: "configuration.reload", Resource: "config", Success: keysErr == nil, Metadata: meta})
	return keysErr
}

// reloadable are the keys SIGHUP applies; any other difference is reported
// as needing a restart.
var reloadable = map[string]bool{
	"resilience.rate_limit_enabled": true, "resilience.rate_limit_requests_per_second": true, "resilience.rate_limit_burst": true,
	"resilience.ip_rate_limit_enabled": true, "resilience.ip_rate_limit_requests_per_second": true, "resilience.ip_rate_limit_burst": true,
	"observability.tracing_level": true,
}

// diffConfig lists the keys that differ, split into applied and ignored.
func diffConfig(old, next *Config) (applied, ignored []string) {
	for _, f := range cfgFields() {
		o := reflect.ValueOf(f.ptr(old)).Elem().Interface()
		n := reflect.ValueOf(f.ptr(next)).Elem().Interface()
		if reflect.DeepEqual(o, n) {
			continue
		}
		if reloadable[f.key] {
			applied = append(applied, f.key)
		} else {
			ignored = append(ignored, f.key)
		}
	}
	return applied, ignored
}
