package main

import (
	"strconv"
	"strings"
	"time"
)

// AuthFailure records a failed authentication from source for identity
// ("" when none was claimed; it then counts toward brute force only).
// At least BruteForceThreshold failures within BruteForceWindow raise
// brute_force_attack (high; critical above 4× the threshold); failures for
// at least 5 distinct identities raise credential_stuffing (high). It
// returns the more severe incident touched (stuffing on a tie), or nil.
func (m *SecurityMonitor) AuthFailure(source, identity, reason string) *Incident {
	if !m.settings.Enabled {
		return nil
	}
	now := m.now()
	identity, reason = monClip(identity), monClip(reason)
	s := m.settings
	m.mu.Lock()
	m.failedAuth.add(now)
	st := m.auth.getOrCreate(source, m.maxKeys, func() *monAuthState { return &monAuthState{} })
	failures, identities := st.record(now, identity, s.BruteForceWindow, monCriticalFactor*s.BruteForceThreshold+1)
	var events []monEvent
	var best *monRecord
	if failures >= s.BruteForceThreshold {
		level := monHigh
		if failures > monCriticalFactor*s.BruteForceThreshold {
			level = monCritical
		}
		meta := map[string]string{"failures_in_window": strconv.Itoa(failures), "reason": reason}
		if identity != "" {
			meta["last_identity"] = identity
		}
		rec, ev := m.upsertLocked(now, monSignal{
			typ: IncidentBruteForce, key: source, source: source, level: level, window: s.BruteForceWindow,
			description: strconv.Itoa(failures) + " authentication failures from " + source + " within " + s.BruteForceWindow.String(),
			meta:        meta, blockable: true,
		})
		events, best = append(events, ev), rec
	}
	if identity != "" && identities >= monStuffingIdentities {
		rec, ev := m.upsertLocked(now, monSignal{
			typ: IncidentCredentialStuffing, key: source, source: source, level: monHigh, window: s.BruteForceWindow,
			description: "authentication failures for " + strconv.Itoa(identities) + " distinct identities from " + source,
			meta:        map[string]string{"distinct_identities": strconv.Itoa(identities), "last_identity": identity, "reason": reason},
			blockable:   true,
		})
		events = append(events, ev)
		if best == nil || monRank(rec.inc.ThreatLevel) >= monRank(best.inc.ThreatLevel) {
			best = rec
		}
	}
	return m.finish(best, events)
}

// Unauthenticated records a request without credentials to a protected
// route: unauthorized_access (low), one incident per source per
// BruteForceWindow with the requests counted in Metadata["count"].
func (m *SecurityMonitor) Unauthenticated(source, route string) *Incident {
	if !m.settings.Enabled {
		return nil
	}
	now := m.now()
	m.mu.Lock()
	rec, ev := m.upsertLocked(now, monSignal{
		typ: IncidentUnauthorizedAccess, key: source, source: source, level: monLow, window: m.settings.BruteForceWindow,
		description: "requests without valid credentials to protected routes from " + source,
		resources:   []string{route}, action: "request rejected (401)",
	})
	return m.finish(rec, []monEvent{ev})
}

// RateLimited records a rate-limit rejection for key in scope ("ip" or
// "principal"; key is the address or the principal) of a request from
// source. At least RateLimitThreshold rejections within a minute raise
// rate_limit_abuse (medium), de-duplicated per (scope, key) within a
// minute; abuse sustained for 5 minutes without a one-minute lull turns
// it high.
func (m *SecurityMonitor) RateLimited(scope, key, source string) *Incident {
	if !m.settings.Enabled {
		return nil
	}
	now := m.now()
	m.mu.Lock()
	st := m.rate.getOrCreate(scope+":"+key, m.maxKeys, func() *monRateState { return &monRateState{} })
	n := st.window.add(now)
	if n < m.settings.RateLimitThreshold {
		m.mu.Unlock()
		return nil
	}
	if st.abuseLast.IsZero() || now.Sub(st.abuseLast) > monRateWindow {
		st.abuseStart = now
	}
	st.abuseLast = now
	level := monMedium
	if now.Sub(st.abuseStart) >= monRateSustained {
		level = monHigh
	}
	principal := ""
	if scope == "principal" {
		principal = key
	}
	rec, ev := m.upsertLocked(now, monSignal{
		typ: IncidentRateLimitAbuse, key: scope + ":" + key, source: source, principal: principal, level: level,
		window:      monRateWindow,
		description: strconv.Itoa(n) + " rate-limit rejections within a minute for " + scope + " " + monClip(key),
		meta: map[string]string{"scope": scope, "key": monClip(key), "rejections_per_minute": strconv.Itoa(n),
			"abuse_since": st.abuseStart.UTC().Format(time.RFC3339Nano)},
		action: "requests rejected (429)", blockable: true,
	})
	return m.finish(rec, []monEvent{ev})
}

// PromptInjection records a prompt-injection verdict for a message from
// source and principal: medium, high when the message also carried
// invisible characters or encoded payloads. action is the configured
// prompt_injection_action ("block" or "flag").
func (m *SecurityMonitor) PromptInjection(source, principal string, score float64, signals []string, invisible, encoded bool, action string) *Incident {
	if !m.settings.Enabled {
		return nil
	}
	level := monMedium
	if invisible || encoded {
		level = monHigh
	}
	taken := monClip(action)
	switch action {
	case "block":
		taken = "request rejected (400)"
	case "flag":
		taken = "request flagged"
	}
	now := m.now()
	m.mu.Lock()
	rec, ev := m.upsertLocked(now, monSignal{
		typ: IncidentPromptInjection, key: source, source: source, principal: principal, level: level,
		window: monDedupWindow, description: "prompt injection detected in a message from " + source,
		meta: map[string]string{"score": strconv.FormatFloat(score, 'f', 3, 64),
			"signals": monClip(strings.Join(signals, ",")), "invisible": strconv.FormatBool(invisible),
			"encoded": strconv.FormatBool(encoded), "action": monClip(action)},
		action: taken, blockable: true,
	})
	return m.finish(rec, []monEvent{ev})
}

// SessionHijack records principal (from source) using session sessionID
// owned by owner ("" when unknown): session_hijacking (high).
func (m *SecurityMonitor) SessionHijack(source, principal, sessionID, owner string) *Incident {
	if !m.settings.Enabled {
		return nil
	}
	now := m.now()
	m.mu.Lock()
	rec, ev := m.upsertLocked(now, monSignal{
		typ: IncidentSessionHijacking, key: source, source: source, principal: principal, level: monHigh,
		window: monDedupWindow, description: "session used by a user other than its owner",
		resources: []string{"session:" + sessionID}, meta: map[string]string{"owner": monClip(owner)},
		action: "request rejected (403)", blockable: true,
	})
	return m.finish(rec, []monEvent{ev})
}

// PrivilegeEscalation records an authenticated non-admin calling an admin
// route, or a token claiming a role it was not issued: critical. detail
// describes it.
func (m *SecurityMonitor) PrivilegeEscalation(source, principal, detail string) *Incident {
	if !m.settings.Enabled {
		return nil
	}
	now := m.now()
	m.mu.Lock()
	rec, ev := m.upsertLocked(now, monSignal{
		typ: IncidentPrivilegeEscalation, key: source, source: source, principal: principal, level: monCritical,
		window: monDedupWindow, description: "privilege escalation attempt: " + monClip(detail),
		meta: map[string]string{"last_detail": monClip(detail)}, action: "request rejected (403)", blockable: true,
	})
	return m.finish(rec, []monEvent{ev})
}

// Access records an identified request of principal from source (call it
// for every such request; principal "" is ignored). When principal used
// more than AnomalousSources distinct sources within AnomalousWindow it
// raises anomalous_access (medium), de-duplicated per principal (sources
// differ by nature) within 10 minutes; Source is the latest address.
func (m *SecurityMonitor) Access(source, principal string) *Incident {
	if !m.settings.Enabled || principal == "" {
		return nil
	}
	now := m.now()
	s := m.settings
	m.mu.Lock()
	st := m.access.getOrCreate(principal, m.maxKeys, func() *monAccessState { return &monAccessState{} })
	n := st.record(now, source, s.AnomalousWindow, s.AnomalousSources+1)
	if n <= s.AnomalousSources {
		m.mu.Unlock()
		return nil
	}
	rec, ev := m.upsertLocked(now, monSignal{
		typ: IncidentAnomalousAccess, key: principal, source: source, principal: principal, level: monMedium,
		window:      monDedupWindow,
		description: "principal used from " + strconv.Itoa(n) + " distinct source addresses within " + s.AnomalousWindow.String(),
		resources:   []string{"principal:" + monClip(principal)},
		meta:        map[string]string{"distinct_sources": strconv.Itoa(n), "sources": st.list()},
	})
	return m.finish(rec, []monEvent{ev})
}

// DataExfiltration records secrets of kinds (see scanSecrets) found and
// redacted in model or tool output for principal from source: high.
func (m *SecurityMonitor) DataExfiltration(source, principal string, kinds []string) *Incident {
	if !m.settings.Enabled {
		return nil
	}
	now := m.now()
	m.mu.Lock()
	rec, ev := m.upsertLocked(now, monSignal{
		typ: IncidentDataExfiltration, key: source, source: source, principal: principal, level: monHigh,
		window: monDedupWindow, description: "secrets in model or tool output: " + monClip(strings.Join(kinds, ", ")),
		meta: map[string]string{"kinds": monClip(strings.Join(kinds, ","))}, action: "response redacted",
		blockable: true,
	})
	return m.finish(rec, []monEvent{ev})
}

// ConfigTampering records the configuration file changing on disk after
// startup, or a reload disabling auth, audit or security: critical, Source
// "config", never blocked. metadata (may be nil) is copied into the
// incident.
func (m *SecurityMonitor) ConfigTampering(detail string, metadata map[string]string) *Incident {
	if !m.settings.Enabled {
		return nil
	}
	meta := make(map[string]string, len(metadata)+1)
	for k, v := range metadata {
		meta[monClip(k)] = monClip(v)
	}
	meta["last_detail"] = monClip(detail)
	now := m.now()
	m.mu.Lock()
	rec, ev := m.upsertLocked(now, monSignal{
		typ: IncidentConfigTampering, key: monConfigSource, source: monConfigSource, level: monCritical,
		window: monDedupWindow, description: "configuration tampering: " + monClip(detail), meta: meta,
	})
	return m.finish(rec, []monEvent{ev})
}
