package main

import (
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Errors of SecurityMonitor.UpdateStatus.
var (
	ErrIncidentNotFound      = errors.New("incident not found")
	ErrInvalidIncidentStatus = errors.New("invalid incident status")
)

// Limits of IncidentFilter.Limit.
const (
	monDefaultLimit = 100
	monMaxLimit     = 1000
)

// IncidentFilter selects incidents for GET /security/incidents. Empty
// fields match everything; Since keeps incidents last seen at or after
// it; Limit ≤ 0 means 100 and is capped at 1000.
type IncidentFilter struct {
	Type, Level, Status string
	Since               time.Time
	Limit               int
}

// parseIncidentFilter reads the query parameters type, level, status,
// since (RFC 3339) and limit (default 100, capped at 1000). An unknown
// parameter, a repeated one or a bad value is an error naming it.
func parseIncidentFilter(v url.Values) (IncidentFilter, error) {
	f := IncidentFilter{Limit: monDefaultLimit}
	for key, vals := range v {
		if len(vals) != 1 {
			return IncidentFilter{}, fmt.Errorf("%s: given %d times, want once", key, len(vals))
		}
		val := vals[0]
		switch key {
		case "type":
			if !monValidType(val) {
				return IncidentFilter{}, fmt.Errorf("type: %q is not one of %s, %s, %s, %s, %s, %s, %s, %s, %s, %s", val,
					IncidentBruteForce, IncidentPromptInjection, IncidentRateLimitAbuse, IncidentAnomalousAccess,
					IncidentDataExfiltration, IncidentPrivilegeEscalation, IncidentUnauthorizedAccess,
					IncidentConfigTampering, IncidentCredentialStuffing, IncidentSessionHijacking)
			}
			f.Type = val
		case "level":
			if monRank(val) == 0 {
				return IncidentFilter{}, fmt.Errorf("level: %q is not one of low, medium, high, critical", val)
			}
			f.Level = val
		case "status":
			switch val {
			case monStatusOpen, monStatusInvestigating, monStatusResolved, monStatusFalsePositive:
			default:
				return IncidentFilter{}, fmt.Errorf("status: %q is not one of open, investigating, resolved, false_positive", val)
			}
			f.Status = val
		case "since":
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				return IncidentFilter{}, fmt.Errorf("since: must be RFC 3339 (e.g. 2006-01-02T15:04:05Z): %w", err)
			}
			f.Since = t
		case "limit":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return IncidentFilter{}, fmt.Errorf("limit: %q must be a positive integer", val)
			}
			f.Limit = min(n, monMaxLimit)
		default:
			return IncidentFilter{}, fmt.Errorf("%s: unknown parameter (known: type, level, status, since, limit)", key)
		}
	}
	return f, nil
}

func monValidType(t string) bool {
	switch t {
	case IncidentBruteForce, IncidentPromptInjection, IncidentRateLimitAbuse, IncidentAnomalousAccess,
		IncidentDataExfiltration, IncidentPrivilegeEscalation, IncidentUnauthorizedAccess,
		IncidentConfigTampering, IncidentCredentialStuffing, IncidentSessionHijacking:
		return true
	}
	return false
}

// Incidents returns copies of the stored incidents matching f, newest
// (most recently created) first.
func (m *SecurityMonitor) Incidents(f IncidentFilter) []Incident {
	limit := f.Limit
	if limit <= 0 {
		limit = monDefaultLimit
	}
	limit = min(limit, monMaxLimit)
	m.mu.Lock()
	defer m.mu.Unlock()
	var recs []*monRecord
	for _, rec := range m.byID {
		inc := &rec.inc
		if (f.Type != "" && inc.IncidentType != f.Type) || (f.Level != "" && inc.ThreatLevel != f.Level) ||
			(f.Status != "" && inc.Status != f.Status) || (!f.Since.IsZero() && rec.lastSeen.Before(f.Since)) {
			continue
		}
		recs = append(recs, rec)
	}
	slices.SortFunc(recs, func(a, b *monRecord) int { return cmp.Compare(b.seq, a.seq) })
	out := make([]Incident, 0, min(len(recs), limit))
	for _, rec := range recs[:min(len(recs), limit)] {
		out = append(out, monCopy(rec.inc))
	}
	return out
}

// UpdateStatus sets incident id's status to investigating, resolved or
// false_positive and returns the updated copy. A resolved or
// false_positive incident is never folded into again: a later occurrence
// opens a new incident. Marking it false_positive also lifts the blocks it
// set (the operator says the source did nothing wrong); resolving keeps
// them to their end. Errors wrap ErrIncidentNotFound or
// ErrInvalidIncidentStatus ("open" is not settable).
func (m *SecurityMonitor) UpdateStatus(id, status string) (Incident, error) {
	closed := false
	switch status {
	case monStatusInvestigating:
	case monStatusResolved, monStatusFalsePositive:
		closed = true
	default:
		return Incident{}, fmt.Errorf("status %q: must be one of investigating, resolved, false_positive: %w",
			monClip(status), ErrInvalidIncidentStatus)
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.byID[id]
	if !ok {
		return Incident{}, fmt.Errorf("incident %q: %w", monClip(id), ErrIncidentNotFound)
	}
	if rec.inc.Status != status {
		rec.inc.Status = status
		rec.inc.Metadata["status_changed_at"] = now.UTC().Format(time.RFC3339Nano)
	}
	if status == monStatusFalsePositive && rec.blocks != [2]string{} {
		for _, k := range rec.blocks {
			// Only this incident's block: a later incident may have renewed it.
			if until, ok := m.blocks.peek(k); k != "" && ok && until.Equal(rec.until) {
				m.blocks.delete(k)
			}
		}
		rec.blocks = [2]string{}
		rec.inc.ActionTaken += "; block lifted (false positive)"
	}
	if closed != rec.closed {
		from, to := m.openList, m.closedList
		if rec.closed {
			from, to = m.closedList, m.openList
		}
		from.Remove(rec.elem)
		rec.elem = monInsertBySeq(to, rec)
		rec.closed = closed
	}
	return monCopy(rec.inc), nil
}

// monInsertBySeq inserts rec into l, which is ordered by seq, and returns
// its element.
func monInsertBySeq(l *list.List, rec *monRecord) *list.Element {
	for e := l.Back(); e != nil; e = e.Prev() {
		if e.Value.(*monRecord).seq < rec.seq {
			return l.InsertAfter(rec, e)
		}
	}
	return l.PushFront(rec)
}

// Dashboard is the answer of GET /security/dashboard (DESIGN §3).
type Dashboard struct {
	TotalIncidents     int             `json:"total_incidents"`
	ActiveIncidents    int             `json:"active_incidents"` // open + investigating
	IncidentsByThreat  map[string]int  `json:"incidents_by_threat"`
	IncidentsByType    map[string]int  `json:"incidents_by_type"`
	FailedAuth24h      int             `json:"failed_auth_24h"`
	UniqueAttackers24h int             `json:"unique_attackers_24h"`
	TopAttackers       []AttackerCount `json:"top_attackers"`   // top 10 sources by incidents
	RecentCritical     []Incident      `json:"recent_critical"` // up to 10, newest first
}

// AttackerCount is a source address and how many stored incidents name it.
type AttackerCount struct {
	Source    string `json:"source"`
	Incidents int    `json:"incidents"`
}

// Dashboard sums the incident store: totals by level and type (every
// level and type present, zero included), active incidents, the
// authentication failures of the last 24 hours, the distinct sources of
// incidents seen in the last 24 hours, the ten sources with the most
// stored incidents and the ten newest critical incidents. The "config"
// source of configuration_tampering is not an attacker.
func (m *SecurityMonitor) Dashboard() Dashboard {
	now := m.now()
	d := Dashboard{
		IncidentsByThreat: map[string]int{monLow: 0, monMedium: 0, monHigh: 0, monCritical: 0},
		IncidentsByType:   make(map[string]int, 10),
		TopAttackers:      []AttackerCount{},
		RecentCritical:    []Incident{},
	}
	for _, t := range []string{IncidentBruteForce, IncidentPromptInjection, IncidentRateLimitAbuse,
		IncidentAnomalousAccess, IncidentDataExfiltration, IncidentPrivilegeEscalation, IncidentUnauthorizedAccess,
		IncidentConfigTampering, IncidentCredentialStuffing, IncidentSessionHijacking} {
		d.IncidentsByType[t] = 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d.FailedAuth24h = m.failedAuth.sum(now)
	perSource := make(map[string]int)
	recent := make(map[string]bool)
	var critical []*monRecord
	for _, rec := range m.byID {
		inc := &rec.inc
		d.TotalIncidents++
		if inc.Status == monStatusOpen || inc.Status == monStatusInvestigating {
			d.ActiveIncidents++
		}
		d.IncidentsByThreat[inc.ThreatLevel]++
		d.IncidentsByType[inc.IncidentType]++
		if inc.ThreatLevel == monCritical {
			critical = append(critical, rec)
		}
		if inc.Source == "" || (inc.IncidentType == IncidentConfigTampering && inc.Source == monConfigSource) {
			continue
		}
		perSource[inc.Source]++
		if now.Sub(rec.lastSeen) <= 24*time.Hour {
			recent[inc.Source] = true
		}
	}
	d.UniqueAttackers24h = len(recent)
	for src, n := range perSource {
		d.TopAttackers = append(d.TopAttackers, AttackerCount{Source: src, Incidents: n})
	}
	slices.SortFunc(d.TopAttackers, func(a, b AttackerCount) int {
		return cmp.Or(cmp.Compare(b.Incidents, a.Incidents), cmp.Compare(a.Source, b.Source))
	})
	d.TopAttackers = d.TopAttackers[:min(len(d.TopAttackers), 10)]
	slices.SortFunc(critical, func(a, b *monRecord) int { return cmp.Compare(b.seq, a.seq) })
	for _, rec := range critical[:min(len(critical), 10)] {
		d.RecentCritical = append(d.RecentCritical, monCopy(rec.inc))
	}
	return d
}
