package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// AuditEvent is one record of the audit trail (DESIGN §8). The same JSON
// object is a line of the file backend and an element of GET /audit.
//
// Message text, API keys and tokens never belong in an event; callers record
// lengths and hashes instead (auditFingerprint). As a safety net, Append
// replaces the values of metadata keys that name such secrets ("message",
// "prompt", "api_key", "token", ...) by their fingerprint.
//
// Seq, PrevHash and Hash are set by the file backend only; whatever a caller
// puts there is discarded. They must stay the last three fields: the chain
// splices them onto the JSON of the rest of the record (see auditSeal).
type AuditEvent struct {
	ID           string            `json:"id"`        // UUIDv4, filled by Append when empty
	Timestamp    time.Time         `json:"timestamp"` // UTC, RFC 3339 with nanoseconds; filled by Append when zero
	EventType    string            `json:"event_type"`
	Severity     string            `json:"severity"` // empty means SeverityInfo
	Actor        string            `json:"actor"`
	Action       string            `json:"action"`
	Resource     string            `json:"resource"`
	Success      bool              `json:"success"`
	ErrorMessage string            `json:"error_message"`
	SourceIP     string            `json:"source_ip"`
	UserAgent    string            `json:"user_agent"`
	SessionID    string            `json:"session_id"`
	RequestID    string            `json:"request_id"`
	TraceID      string            `json:"trace_id"`
	Metadata     map[string]string `json:"metadata"`            // written as {} when nil (MarshalJSON)
	Seq          uint64            `json:"seq,omitempty"`       // file backend: 1, 2, 3, ... without gaps
	PrevHash     string            `json:"prev_hash,omitempty"` // file backend: Hash of record Seq-1, or 64 zeros for Seq 1
	Hash         string            `json:"hash,omitempty"`      // file backend: see auditSeal
}

// auditEventFields is AuditEvent without its methods: what MarshalJSON
// encodes.
type auditEventFields AuditEvent

// auditNoMetadata stands in for nil metadata when encoding; never written to.
var auditNoMetadata = map[string]string{}

// MarshalJSON writes every field of DESIGN §8, error_message even when
// empty and metadata as {} when there is none, so that every record has the
// same shape; seq, prev_hash and hash only in the file backend.
func (ev AuditEvent) MarshalJSON() ([]byte, error) { return json.Marshal(ev.fields()) }

// fields is ev as MarshalJSON encodes it: nil metadata stands as {}.
func (ev AuditEvent) fields() auditEventFields {
	if ev.Metadata == nil {
		ev.Metadata = auditNoMetadata
	}
	return auditEventFields(ev)
}

// auditEventV1 is how records were encoded before every field was always
// written: error_message and metadata were left out when empty. Audit files
// holding such lines still verify and continue (auditCheckLine).
type auditEventV1 struct {
	ID           string            `json:"id"`
	Timestamp    time.Time         `json:"timestamp"`
	EventType    string            `json:"event_type"`
	Severity     string            `json:"severity"`
	Actor        string            `json:"actor"`
	Action       string            `json:"action"`
	Resource     string            `json:"resource"`
	Success      bool              `json:"success"`
	ErrorMessage string            `json:"error_message,omitempty"`
	SourceIP     string            `json:"source_ip"`
	UserAgent    string            `json:"user_agent"`
	SessionID    string            `json:"session_id"`
	RequestID    string            `json:"request_id"`
	TraceID      string            `json:"trace_id"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Seq          uint64            `json:"seq,omitempty"`
	PrevHash     string            `json:"prev_hash,omitempty"`
	Hash         string            `json:"hash,omitempty"`
}

// Event types of AuditEvent.EventType (the seed's six).
const (
	EventAuthentication = "authentication"
	EventAuthorization  = "authorization"
	EventDataAccess     = "data_access"
	EventConfiguration  = "configuration"
	EventSecurity       = "security"
	EventLLMInteraction = "llm_interaction"
)

// Severities of AuditEvent.Severity, in increasing order.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityError    = "error"
	SeverityCritical = "critical"
)

// Errors of the audit log. Every Append failure wraps ErrAuditUnavailable
// (HTTP 503 audit_unavailable); an Append after Close wraps both
// ErrAuditClosed and ErrAuditUnavailable.
var (
	ErrAuditUnavailable = errors.New("audit unavailable")
	ErrAuditClosed      = errors.New("audit log closed")
)

// auditErrInvalidEvent marks an event that Append refuses (unknown type or
// severity, oversized record): a programming error, still failing closed.
var auditErrInvalidEvent = errors.New("invalid audit event")

// AuditHooks lets the metrics code observe the audit log. Every field may be
// nil. Hooks run on the appending or writer goroutine but never while the log
// holds one of its locks, so they may call Query or Healthy; they must be
// quick and must not call Append (the file backend's writer would wait on
// itself).
type AuditHooks struct {
	OnEvent      func(eventType string) // once per event stored (agent_audit_events_total)
	OnWriteError func(error)            // once per failed write or fsync (agent_audit_write_errors_total)
	OnEvict      func()                 // once per event evicted from the in_memory ring
}

// AuditLog is the audit trail: the in_memory ring (MemoryAudit) or the
// hash-chained JSON Lines file (FileAudit).
type AuditLog interface {
	// Append writes events atomically in order; when it returns nil they are
	// durable per the backend's fsync policy. It fills ID/Timestamp if empty.
	// A backend that can wait (the file) bounds the wait itself when ctx has
	// no deadline. Safe for concurrent use.
	Append(ctx context.Context, events ...AuditEvent) error
	// Query returns the matching events, newest first.
	Query(q AuditQuery) ([]AuditEvent, error)
	// Healthy is nil when the last write succeeded (or none failed since recovery).
	Healthy() error
	// Close flushes, fsyncs, closes; Append after Close returns ErrAuditClosed.
	Close() error
}

// Query limits: the default when none is given and the cap (larger limits
// are clamped, not refused, so a dashboard asking for "everything" works).
const (
	auditDefaultLimit = 100
	auditMaxLimit     = 1000
)

// AuditQuery selects events for GET /audit. Empty strings, a nil Success and
// zero times do not filter. Since is inclusive, Until exclusive
// (Since <= timestamp < Until). MinSeverity keeps events of that severity or
// worse. Limit <= 0 means 100; above 1000 it is clamped to 1000.
type AuditQuery struct {
	EventType, Actor, Action, MinSeverity, SourceIP, SessionID string
	Success                                                    *bool
	Since, Until                                               time.Time
	Limit                                                      int
}

// parseAuditQuery reads the GET /audit query string. Known parameters:
// event_type, actor, action, success (true|false), min_severity, source_ip,
// session_id, since, until (RFC 3339), limit (1.., default 100, values above
// 1000 are clamped to 1000). An unknown or repeated parameter, or an invalid
// value, is an error whose text starts with the parameter's name.
func parseAuditQuery(v url.Values) (AuditQuery, error) {
	q := AuditQuery{Limit: auditDefaultLimit}
	for key, vals := range v {
		if len(vals) != 1 {
			return AuditQuery{}, fmt.Errorf("%s: given %d times, want once", key, len(vals))
		}
		val := vals[0]
		switch key {
		case "event_type":
			if !auditValidEventType(val) {
				return AuditQuery{}, fmt.Errorf("event_type: %q is not one of authentication, authorization, data_access, configuration, security, llm_interaction", val)
			}
			q.EventType = val
		case "min_severity":
			if auditSeverityRank(val) == 0 {
				return AuditQuery{}, fmt.Errorf("min_severity: %q is not one of info, warning, error, critical", val)
			}
			q.MinSeverity = val
		case "actor":
			q.Actor = val
		case "action":
			q.Action = val
		case "source_ip":
			q.SourceIP = val
		case "session_id":
			q.SessionID = val
		case "success":
			switch val {
			case "true":
				q.Success = new(true)
			case "false":
				q.Success = new(false)
			default:
				return AuditQuery{}, fmt.Errorf("success: %q must be true or false", val)
			}
		case "since", "until":
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				return AuditQuery{}, fmt.Errorf("%s: must be RFC 3339 (e.g. 2006-01-02T15:04:05Z): %w", key, err)
			}
			if key == "since" {
				q.Since = t
			} else {
				q.Until = t
			}
		case "limit":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return AuditQuery{}, fmt.Errorf("limit: %q must be a positive integer", val)
			}
			q.Limit = min(n, auditMaxLimit)
		default:
			return AuditQuery{}, fmt.Errorf("%s: unknown parameter (known: event_type, actor, action, success, min_severity, source_ip, session_id, since, until, limit)", key)
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return AuditQuery{}, errors.New("until: must be after since")
	}
	return q, nil
}

// auditCheckQuery validates q and returns its effective limit and minimum
// severity rank.
func auditCheckQuery(q AuditQuery) (limit, minRank int, err error) {
	if q.EventType != "" && !auditValidEventType(q.EventType) {
		return 0, 0, fmt.Errorf("audit query: unknown event_type %q", q.EventType)
	}
	if q.MinSeverity != "" {
		if minRank = auditSeverityRank(q.MinSeverity); minRank == 0 {
			return 0, 0, fmt.Errorf("audit query: unknown min_severity %q", q.MinSeverity)
		}
	}
	limit = q.Limit
	if limit <= 0 {
		limit = auditDefaultLimit
	}
	return min(limit, auditMaxLimit), minRank, nil
}

func auditValidEventType(s string) bool {
	switch s {
	case EventAuthentication, EventAuthorization, EventDataAccess, EventConfiguration, EventSecurity, EventLLMInteraction:
		return true
	}
	return false
}

// auditSeverityRank orders severities from 1 (info) to 4 (critical); 0 means unknown.
func auditSeverityRank(s string) int {
	switch s {
	case SeverityInfo:
		return 1
	case SeverityWarning:
		return 2
	case SeverityError:
		return 3
	case SeverityCritical:
		return 4
	}
	return 0
}

// newUUID returns a random (version 4, RFC 9562) UUID in its canonical
// 36-character form, from crypto/rand. Safe for concurrent use.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24 (it crashes the program instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// auditFingerprint describes a secret or a message without revealing it: its
// length in bytes and the first 16 hex digits of its SHA-256.
func auditFingerprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "len=" + strconv.Itoa(len(s)) + " sha256=" + hex.EncodeToString(sum[:8])
}

// auditSecretKey reports whether a metadata key names content that must never
// be stored verbatim (message text, credentials).
func auditSecretKey(k string) bool {
	switch strings.ToLower(k) {
	case "message", "prompt", "content", "text", "completion", "response",
		"api_key", "apikey", "key", "authorization", "token", "access_token",
		"refresh_token", "id_token", "bearer", "jwt", "password", "secret", "cookie":
		return true
	}
	return false
}

// auditValidUTF8 is strings.ToValidUTF8 with U+FFFD, without its rune-by-rune
// walk when s is valid already (nearly always).
func auditValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// auditMetadataNeedsCopy reports whether normalising md changes it: a
// secret-named key or invalid UTF-8. Otherwise the normalised event shares
// the caller's map: MemoryAudit packs it before Append returns, FileAudit
// clones it (its writer may outlive an Append that stopped waiting).
func auditMetadataNeedsCopy(md map[string]string) bool {
	for k, v := range md {
		if auditSecretKey(k) || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return true
		}
	}
	return false
}

// auditNormalize validates ev and returns the copy that is stored: ID and
// Timestamp filled, timestamp in UTC, empty severity as info, strings made
// valid UTF-8 (so the stored event equals its JSON), metadata copied when
// that or fingerprinting secret-named values changes it, and the chain
// fields cleared.
func auditNormalize(ev AuditEvent, now func() time.Time) (AuditEvent, error) {
	if !auditValidEventType(ev.EventType) {
		return AuditEvent{}, fmt.Errorf("event_type %q: %w", ev.EventType, auditErrInvalidEvent)
	}
	if ev.Severity == "" {
		ev.Severity = SeverityInfo
	}
	if auditSeverityRank(ev.Severity) == 0 {
		return AuditEvent{}, fmt.Errorf("severity %q: %w", ev.Severity, auditErrInvalidEvent)
	}
	if ev.ID == "" {
		ev.ID = newUUID()
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = now()
	}
	ev.Timestamp = ev.Timestamp.UTC()
	if y := ev.Timestamp.Year(); y < 0 || y > 9999 {
		return AuditEvent{}, fmt.Errorf("timestamp year %d outside 0..9999: %w", y, auditErrInvalidEvent)
	}
	for _, p := range []*string{&ev.ID, &ev.Actor, &ev.Action, &ev.Resource, &ev.ErrorMessage,
		&ev.SourceIP, &ev.UserAgent, &ev.SessionID, &ev.RequestID, &ev.TraceID} {
		*p = auditValidUTF8(*p)
	}
	switch {
	case len(ev.Metadata) == 0:
		ev.Metadata = nil
	case auditMetadataNeedsCopy(ev.Metadata):
		md := make(map[string]string, len(ev.Metadata))
		for k, v := range ev.Metadata {
			k = auditValidUTF8(k)
			if auditSecretKey(k) {
				v = "redacted " + auditFingerprint(v)
			}
			md[k] = auditValidUTF8(v)
		}
		ev.Metadata = md
	}
	ev.Seq, ev.PrevHash, ev.Hash = 0, "", ""
	return ev, nil
}

// auditDefaultMaxEvents is audit.max_events' default, used when a size <= 0 is given.
const auditDefaultMaxEvents = 100000

// MemoryAudit is the in_memory backend: a ring of the most recent maxEvents
// events. When full, each Append evicts the oldest events; evictions are
// counted (Evicted, AuditHooks.OnEvict). Append never blocks on I/O, never
// fails except after Close or for an invalid event, and ignores ctx (it
// cannot wait).
// Nothing survives a restart. Safe for concurrent use.
type MemoryAudit struct {
	hooks AuditHooks
	now   func() time.Time

	mu      sync.Mutex // guards the fields below
	ring    auditRing
	evicted uint64
	closed  bool
}

// newMemoryAudit returns an empty in_memory audit log holding at most
// maxEvents events (maxEvents <= 0 means 100000). now stamps events without a
// timestamp; nil means time.Now.
func newMemoryAudit(maxEvents int, hooks AuditHooks, now func() time.Time) *MemoryAudit {
	if maxEvents <= 0 {
		maxEvents = auditDefaultMaxEvents
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryAudit{hooks: hooks, now: now, ring: auditRing{max: maxEvents}}
}

// Append stores events atomically in order (no other Append interleaves).
func (m *MemoryAudit) Append(_ context.Context, events ...AuditEvent) error {
	packed := make([]auditPacked, len(events))
	for i, ev := range events {
		n, err := auditNormalize(ev, m.now)
		if err != nil {
			return fmt.Errorf("audit append: %w: %w", ErrAuditUnavailable, err)
		}
		packed[i] = auditPack(&n)
	}
	evicted := 0
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("audit append: %w: %w", ErrAuditClosed, ErrAuditUnavailable)
	}
	for _, p := range packed {
		if m.ring.pushPacked(p) {
			evicted++
		}
	}
	m.evicted += uint64(evicted)
	m.mu.Unlock()
	for range evicted {
		if m.hooks.OnEvict != nil {
			m.hooks.OnEvict()
		}
	}
	if m.hooks.OnEvent != nil {
		for _, p := range packed {
			m.hooks.OnEvent(p.eventType())
		}
	}
	return nil
}

// Query returns the matching events, newest first.
func (m *MemoryAudit) Query(q AuditQuery) ([]AuditEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return auditCollect(&m.ring, q)
}

// Healthy is always nil before Close (memory cannot fail to write) and
// ErrAuditClosed after it.
func (m *MemoryAudit) Healthy() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrAuditClosed
	}
	return nil
}

// Evicted returns how many events the ring has dropped to make room.
func (m *MemoryAudit) Evicted() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.evicted
}

// Close makes later Appends fail with ErrAuditClosed; stored events stay
// queryable. It always returns nil.
func (m *MemoryAudit) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

// auditSelfAgent is the user_agent of records the audit log writes itself.
func auditSelfAgent() string { return "production-agent/" + version }
