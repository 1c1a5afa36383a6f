package main

import (
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Incident is one security incident (DESIGN §8). Timestamp is when it was
// first seen; later occurrences inside the type's de-duplication window are
// folded in: Metadata["count"] counts them and Metadata["last_seen"] (RFC 3339,
// UTC) is the latest. Slices and the map are never nil in values returned by
// the monitor, and they are copies the caller may keep or change.
type Incident struct {
	ID                string            `json:"id"`
	Timestamp         time.Time         `json:"timestamp"`
	IncidentType      string            `json:"incident_type"`
	ThreatLevel       string            `json:"threat_level"`
	Status            string            `json:"status"`
	Source            string            `json:"source"`
	Description       string            `json:"description"`
	AffectedResources []string          `json:"affected_resources"`
	RelatedEvents     []string          `json:"related_events"`
	Metadata          map[string]string `json:"metadata"`
	ActionTaken       string            `json:"action_taken"`
}

// Incident types (DESIGN §8 incident_type).
const (
	IncidentBruteForce          = "brute_force_attack"
	IncidentPromptInjection     = "prompt_injection"
	IncidentRateLimitAbuse      = "rate_limit_abuse"
	IncidentAnomalousAccess     = "anomalous_access"
	IncidentDataExfiltration    = "data_exfiltration"
	IncidentPrivilegeEscalation = "privilege_escalation"
	IncidentUnauthorizedAccess  = "unauthorized_access"
	IncidentConfigTampering     = "configuration_tampering"
	IncidentCredentialStuffing  = "credential_stuffing"
	IncidentSessionHijacking    = "session_hijacking"
)

// Threat levels and statuses (DESIGN §8).
const (
	monLow      = "low"
	monMedium   = "medium"
	monHigh     = "high"
	monCritical = "critical"

	monStatusOpen          = "open"
	monStatusInvestigating = "investigating"
	monStatusResolved      = "resolved"
	monStatusFalsePositive = "false_positive"
)

// Defaults and fixed rules of the monitor.
const (
	monDefaultBruteForceThreshold = 5
	monDefaultBruteForceWindow    = 300 * time.Second
	monDefaultRateLimitThreshold  = 100
	monDefaultBlockDuration       = 900 * time.Second
	monDefaultAnomalousSources    = 5
	monDefaultAnomalousWindow     = 10 * time.Minute
	monDefaultMaxIncidents        = 10000

	// monCriticalFactor: brute force turns critical above this many times
	// the threshold (more than 20 failures with the default threshold 5).
	monCriticalFactor = 4
	// monStuffingIdentities distinct identities failing from one source
	// within the brute-force window make credential stuffing.
	monStuffingIdentities = 5
	// monRateWindow is the rate-limit-abuse window; abuse sustained for
	// monRateSustained (no gap above monRateWindow) escalates to high.
	monRateWindow    = time.Minute
	monRateSustained = 5 * time.Minute
	// monDedupWindow is the de-duplication window of the types without one
	// of their own.
	monDedupWindow = 10 * time.Minute
	// monMaxTrackedKeys bounds each per-source and per-principal table
	// (auth failures, rate-limit rejections, access sources, blocks); the
	// least recently touched key is forgotten first. ~100k keys keep the
	// tables in the tens of megabytes even under a spoofed-source flood.
	monMaxTrackedKeys = 100_000
	// monMaxResources bounds AffectedResources of one incident and
	// monMaxValueLen every attacker-influenced string kept, so a folded
	// incident cannot grow without bound.
	monMaxResources = 20
	monMaxValueLen  = 256
	// monConfigSource is the Source of configuration_tampering incidents.
	monConfigSource = "config"
)

// MonitorSettings configures a SecurityMonitor. Zero numeric fields mean
// the defaults of DESIGN §5 (5 failures in 300 s, 100 rejections a minute,
// 900 s blocks, more than 5 sources in 10 minutes, 10000 incidents).
type MonitorSettings struct {
	Enabled             bool
	BruteForceThreshold int
	BruteForceWindow    time.Duration
	RateLimitThreshold  int
	AutoBlock           bool
	BlockDuration       time.Duration
	AnomalousSources    int
	AnomalousWindow     time.Duration
	// MaxIncidents bounds the incident store (default 10000); when full,
	// the oldest resolved/false_positive incident is evicted first, then
	// the oldest of all.
	MaxIncidents int
}

// MonitorHooks are callbacks of a SecurityMonitor, always called after its
// lock is released, so they may call back into the monitor. Nil hooks are
// skipped.
type MonitorHooks struct {
	// OnIncident is called when an incident is created (isNew=true) or
	// when a folded occurrence raises its threat level (isNew=false).
	OnIncident func(inc Incident, isNew bool)
	// OnBlock is called when auto-block blocks source (and principal, ""
	// when unknown) until the given time.
	OnBlock func(source, principal string, until time.Time)
}

// SecurityMonitor turns request-path signals into de-duplicated incidents,
// keeps them in a bounded store and, with AutoBlock, blocks the sources and
// principals of high and critical incidents. Every window is evaluated with
// the injected clock; every per-key table is bounded (monMaxTrackedKeys).
// It is safe for concurrent use.
type SecurityMonitor struct {
	settings MonitorSettings
	hooks    MonitorHooks
	now      func() time.Time
	maxKeys  int // per-table key bound; monMaxTrackedKeys, lowered by tests

	mu sync.Mutex
	// Guarded by mu:
	byID       map[string]*monRecord
	dedup      map[string]*monRecord // type + "\x00" + key → latest incident
	openList   *list.List            // records not resolved/false_positive, by seq
	closedList *list.List            // resolved/false_positive records, by seq
	seq        uint64
	auth       *monLRU[*monAuthState]
	rate       *monLRU[*monRateState]
	access     *monLRU[*monAccessState]
	blocks     *monLRU[time.Time] // "s:"+source or "p:"+principal → blocked until
	failedAuth monMinuteRing      // auth failures per minute, last 24 h
}

// monRecord is a stored incident plus its bookkeeping.
type monRecord struct {
	inc      Incident
	seq      uint64
	lastSeen time.Time
	count    int
	dedupKey string
	closed   bool
	elem     *list.Element
	blocks   [2]string // block keys this incident set last (source, principal; "" for none)
	until    time.Time // and when that block ends
}

// monSignal is one qualifying occurrence for upsertLocked.
type monSignal struct {
	typ, key          string // de-duplication key: (typ, key)
	source, principal string
	level             string
	window            time.Duration
	description       string
	resources         []string
	meta              map[string]string
	action            string // what the request path did, "" if nothing
	blockable         bool
}

// monEvent is a hook call collected under the lock and run after it.
type monEvent struct {
	inc       Incident
	notify    bool
	isNew     bool
	block     bool
	principal string
	until     time.Time
}

// newSecurityMonitor returns a monitor with settings s (zero fields take
// their defaults), hooks and clock now (nil: time.Now).
func newSecurityMonitor(s MonitorSettings, hooks MonitorHooks, now func() time.Time) *SecurityMonitor {
	if s.BruteForceThreshold <= 0 {
		s.BruteForceThreshold = monDefaultBruteForceThreshold
	}
	if s.BruteForceWindow <= 0 {
		s.BruteForceWindow = monDefaultBruteForceWindow
	}
	if s.RateLimitThreshold <= 0 {
		s.RateLimitThreshold = monDefaultRateLimitThreshold
	}
	if s.BlockDuration <= 0 {
		s.BlockDuration = monDefaultBlockDuration
	}
	if s.AnomalousSources <= 0 {
		s.AnomalousSources = monDefaultAnomalousSources
	}
	if s.AnomalousWindow <= 0 {
		s.AnomalousWindow = monDefaultAnomalousWindow
	}
	if s.MaxIncidents <= 0 {
		s.MaxIncidents = monDefaultMaxIncidents
	}
	if now == nil {
		now = time.Now
	}
	return &SecurityMonitor{
		settings: s, hooks: hooks, now: now, maxKeys: monMaxTrackedKeys,
		byID: make(map[string]*monRecord), dedup: make(map[string]*monRecord),
		openList: list.New(), closedList: list.New(),
		auth: newMonLRU[*monAuthState](), rate: newMonLRU[*monRateState](),
		access: newMonLRU[*monAccessState](), blocks: newMonLRU[time.Time](),
	}
}

// Blocked reports whether source or principal ("" to skip either) is
// currently blocked, and the time left of the longer block. A disabled
// monitor never blocks.
func (m *SecurityMonitor) Blocked(source, principal string) (blocked bool, retryAfter time.Duration) {
	if !m.settings.Enabled {
		return false, 0
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range [2]string{monBlockKey("s:", source), monBlockKey("p:", principal)} {
		if k == "" {
			continue
		}
		until, ok := m.blocks.peek(k)
		if !ok {
			continue
		}
		if !now.Before(until) {
			m.blocks.delete(k)
			continue
		}
		blocked, retryAfter = true, max(retryAfter, until.Sub(now))
	}
	return blocked, retryAfter
}

func monBlockKey(prefix, v string) string {
	if v == "" {
		return ""
	}
	return prefix + v
}

// finish releases m.mu, runs the collected hook calls and returns a copy of
// rec (nil if rec is nil).
func (m *SecurityMonitor) finish(rec *monRecord, events []monEvent) *Incident {
	var out *Incident
	if rec != nil {
		inc := monCopy(rec.inc)
		out = &inc
	}
	m.mu.Unlock()
	for _, ev := range events {
		if ev.notify && m.hooks.OnIncident != nil {
			m.hooks.OnIncident(ev.inc, ev.isNew)
		}
		if ev.block && m.hooks.OnBlock != nil {
			m.hooks.OnBlock(ev.inc.Source, ev.principal, ev.until)
		}
	}
	return out
}

// upsertLocked folds sig into the open incident of (sig.typ, sig.key) when
// it was last seen within sig.window, or creates a new one, then applies
// auto-block. It returns the record and the hook calls to make.
func (m *SecurityMonitor) upsertLocked(now time.Time, sig monSignal) (*monRecord, monEvent) {
	var ev monEvent
	dk := sig.typ + "\x00" + sig.key
	rec := m.dedup[dk]
	if rec != nil && !rec.closed && now.Sub(rec.lastSeen) <= sig.window {
		rec.count++
		rec.lastSeen = now
		inc := &rec.inc
		for k, v := range sig.meta {
			inc.Metadata[k] = v
		}
		if sig.principal != "" {
			inc.Metadata["principal"] = monClip(sig.principal)
		}
		for _, r := range sig.resources {
			inc.AffectedResources = monAddResource(inc.AffectedResources, r)
		}
		if monRank(sig.level) > monRank(inc.ThreatLevel) {
			inc.ThreatLevel = sig.level
			inc.Description = sig.description
			ev.notify = true
		}
	} else {
		m.seq++
		rec = &monRecord{seq: m.seq, lastSeen: now, count: 1, dedupKey: dk}
		rec.inc = Incident{
			ID: monNewID(), Timestamp: now.UTC(), IncidentType: sig.typ, ThreatLevel: sig.level,
			Status: monStatusOpen, Source: monClip(sig.source), Description: sig.description,
			AffectedResources: []string{}, RelatedEvents: []string{}, Metadata: make(map[string]string, len(sig.meta)+4),
			ActionTaken: sig.action,
		}
		for k, v := range sig.meta {
			rec.inc.Metadata[k] = v
		}
		if sig.principal != "" {
			rec.inc.Metadata["principal"] = monClip(sig.principal)
		}
		for _, r := range sig.resources {
			rec.inc.AffectedResources = monAddResource(rec.inc.AffectedResources, r)
		}
		if rec.inc.ActionTaken == "" {
			rec.inc.ActionTaken = "recorded"
		}
		m.insertLocked(rec)
		ev.notify, ev.isNew = true, true
	}
	rec.inc.Metadata["count"] = strconv.Itoa(rec.count)
	rec.inc.Metadata["last_seen"] = now.UTC().Format(time.RFC3339Nano)
	if m.settings.AutoBlock && sig.blockable && monRank(rec.inc.ThreatLevel) >= monRank(monHigh) {
		m.blockLocked(now, rec, sig, &ev)
	}
	ev.inc = monCopy(rec.inc)
	return rec, ev
}

// blockLocked blocks the source and principal of rec when the incident is
// new or escalated, or when a block of either has lapsed while the
// incident continues.
func (m *SecurityMonitor) blockLocked(now time.Time, rec *monRecord, sig monSignal, ev *monEvent) {
	sk, pk := monBlockKey("s:", sig.source), monBlockKey("p:", sig.principal)
	lapsed := false
	for _, k := range [2]string{sk, pk} {
		if k == "" {
			continue
		}
		if until, ok := m.blocks.peek(k); !ok || !now.Before(until) {
			lapsed = true
		}
	}
	if !ev.notify && !lapsed {
		return
	}
	until := now.Add(m.settings.BlockDuration)
	what := "source"
	switch {
	case sk == "" && pk == "":
		return
	case sk == "":
		what = "principal"
	case pk != "":
		what = "source and principal"
	}
	for _, k := range [2]string{sk, pk} {
		if k != "" {
			m.blocks.put(k, until, m.maxKeys)
		}
	}
	rec.blocks, rec.until = [2]string{sk, pk}, until
	base, _, _ := strings.Cut(rec.inc.ActionTaken, "; blocked ")
	if strings.HasPrefix(base, "blocked ") || base == "recorded" {
		base = ""
	}
	blockText := "blocked " + what + " for " + strconv.FormatInt(int64(m.settings.BlockDuration/time.Second), 10) + "s"
	if base == "" {
		rec.inc.ActionTaken = blockText
	} else {
		rec.inc.ActionTaken = base + "; " + blockText
	}
	ev.block, ev.principal, ev.until = true, sig.principal, until
}

// insertLocked adds rec to the store, evicting the oldest closed incident
// (else the oldest incident) when the store is full.
func (m *SecurityMonitor) insertLocked(rec *monRecord) {
	m.byID[rec.inc.ID] = rec
	m.dedup[rec.dedupKey] = rec
	rec.elem = m.openList.PushBack(rec)
	for len(m.byID) > m.settings.MaxIncidents {
		victim := m.closedList.Front()
		from := m.closedList
		if victim == nil {
			victim, from = m.openList.Front(), m.openList
		}
		v := from.Remove(victim).(*monRecord)
		delete(m.byID, v.inc.ID)
		if m.dedup[v.dedupKey] == v {
			delete(m.dedup, v.dedupKey)
		}
	}
}

// monRank orders threat levels: low 1 … critical 4, anything else 0.
func monRank(level string) int {
	switch level {
	case monLow:
		return 1
	case monMedium:
		return 2
	case monHigh:
		return 3
	case monCritical:
		return 4
	}
	return 0
}

// monCopy returns inc with its own slices and map.
func monCopy(inc Incident) Incident {
	inc.AffectedResources = append([]string{}, inc.AffectedResources...)
	inc.RelatedEvents = append([]string{}, inc.RelatedEvents...)
	meta := make(map[string]string, len(inc.Metadata))
	for k, v := range inc.Metadata {
		meta[k] = v
	}
	inc.Metadata = meta
	return inc
}

// monAddResource appends r (clipped) to rs unless present or rs is full.
func monAddResource(rs []string, r string) []string {
	if r == "" || len(rs) >= monMaxResources {
		return rs
	}
	r = monClip(r)
	for _, have := range rs {
		if have == r {
			return rs
		}
	}
	return append(rs, r)
}

// monClip shortens s to at most monMaxValueLen bytes on a rune boundary.
func monClip(s string) string {
	if len(s) <= monMaxValueLen {
		return s
	}
	cut := monMaxValueLen
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}

// monNewID returns a random version 4 UUID (RFC 9562) in canonical form,
// from crypto/rand.
func monNewID() string {
	var b [16]byte
	rand.Read(b[:]) // never returns an error since Go 1.24
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	hex.Encode(s[9:13], b[4:6])
	hex.Encode(s[14:18], b[6:8])
	hex.Encode(s[19:23], b[8:10])
	hex.Encode(s[24:36], b[10:16])
	s[8], s[13], s[18], s[23] = '-', '-', '-', '-'
	return string(s[:])
}
