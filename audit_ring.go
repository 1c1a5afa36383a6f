package main

import (
	"strings"
	"time"
)

// auditRing holds the most recent max events. It grows on demand up to max
// (no up-front allocation of max slots) and then overwrites the oldest.
// Not safe for concurrent use; its owner locks.
//
// Events are kept packed (auditPacked): with the default 100,000 events an
// AuditEvent struct per slot, its ten strings and its metadata map cost about
// 750 bytes and a dozen pointers each, which the garbage collector walks on
// every cycle; packed, an event costs its text plus 48 bytes and one pointer
// to memory the collector does not scan.
type auditRing struct {
	max  int
	buf  []auditPacked
	next int // when full: index of the oldest event, where the next one goes
}

// push stores ev, normalised (see auditNormalize), and reports whether the
// oldest event was evicted for it.
func (r *auditRing) push(ev *AuditEvent) bool {
	return r.pushPacked(auditPack(ev))
}

// pushPacked is push for an event packed already (outside the owner's lock).
func (r *auditRing) pushPacked(p auditPacked) bool {
	if len(r.buf) < r.max {
		r.buf = append(r.buf, p)
		return false
	}
	r.buf[r.next] = p
	r.next = (r.next + 1) % r.max
	return true
}

// newestFirst calls fn on the events from newest to oldest until fn returns false.
func (r *auditRing) newestFirst(fn func(*auditPacked) bool) {
	n := len(r.buf)
	for i := 1; i <= n; i++ {
		if !fn(&r.buf[(r.next-i+n)%n]) {
			return
		}
	}
}

// auditPacked is one stored event: the fixed-size fields inline and every
// string in data, which holds, in auditPackedFields order, each string as a
// uvarint length and its bytes, then the event type and the severity when
// they are not among the known ones (else empty), then the metadata as
// length-prefixed key and value pairs.
//
// Events appended by this process are normalised (known type and severity,
// UTC); events read back from the tail of an audit file are stored as the
// file has them, whatever their type, severity or zone offset.
type auditPacked struct {
	data  string
	sec   int64 // Timestamp
	seq   uint64
	nsec  int32
	off   int32 // Timestamp's zone offset in seconds east of UTC
	etype uint8 // index in auditEventTypes, or auditOtherType
	sev   uint8 // auditSeverityRank; 0 for a severity not known
	ok    bool  // Success
}

// auditOtherType marks an event type that is not in auditEventTypes: the
// type is in data, at apRawType.
const auditOtherType = 255

// auditEventTypes lists the valid event types; auditPacked.etype indexes it.
var auditEventTypes = [...]string{EventAuthentication, EventAuthorization, EventDataAccess,
	EventConfiguration, EventSecurity, EventLLMInteraction}

// auditSeverities lists the severities by rank (index 0 unused).
var auditSeverities = [...]string{"", SeverityInfo, SeverityWarning, SeverityError, SeverityCritical}

// Positions of the strings in auditPacked.data.
const (
	apID = iota
	apActor
	apAction
	apResource
	apError
	apSourceIP
	apUserAgent
	apSession
	apRequest
	apTrace
	apPrevHash
	apHash
	auditPackedFields
)

// Positions of the event type and severity in data, when not known ones.
const (
	apRawType = auditPackedFields + iota
	apRawSeverity
)

// auditPackedStrings returns pointers to ev's strings in auditPackedFields order.
func auditPackedStrings(ev *AuditEvent) [auditPackedFields]*string {
	return [auditPackedFields]*string{&ev.ID, &ev.Actor, &ev.Action, &ev.Resource, &ev.ErrorMessage,
		&ev.SourceIP, &ev.UserAgent, &ev.SessionID, &ev.RequestID, &ev.TraceID, &ev.PrevHash, &ev.Hash}
}

// auditPack packs an event so that event() gives it back.
func auditPack(ev *AuditEvent) auditPacked {
	_, off := ev.Timestamp.Zone()
	p := auditPacked{
		sec: ev.Timestamp.Unix(), nsec: int32(ev.Timestamp.Nanosecond()), off: int32(off),
		seq: ev.Seq, sev: uint8(auditSeverityRank(ev.Severity)), ok: ev.Success, etype: auditOtherType,
	}
	for i, t := range auditEventTypes {
		if t == ev.EventType {
			p.etype = uint8(i)
		}
	}
	rawType, rawSeverity := "", ""
	if p.etype == auditOtherType {
		rawType = ev.EventType
	}
	if p.sev == 0 {
		rawSeverity = ev.Severity
	}
	strs := auditPackedStrings(ev)
	size := auditStringSize(rawType) + auditStringSize(rawSeverity) // exactly: the builder's buffer is what stays
	for _, s := range strs {
		size += auditStringSize(*s)
	}
	for k, v := range ev.Metadata {
		size += auditStringSize(k) + auditStringSize(v)
	}
	var b strings.Builder
	b.Grow(size)
	for _, s := range strs {
		auditWriteString(&b, *s)
	}
	auditWriteString(&b, rawType)
	auditWriteString(&b, rawSeverity)
	for k, v := range ev.Metadata {
		auditWriteString(&b, k)
		auditWriteString(&b, v)
	}
	p.data = b.String()
	return p
}

// auditStringSize is how many bytes auditWriteString writes for s.
func auditStringSize(s string) int {
	n := 1
	for x := len(s); x >= 0x80; x >>= 7 {
		n++
	}
	return n + len(s)
}

// auditWriteString writes s to b with its length as a uvarint before it.
func auditWriteString(b *strings.Builder, s string) {
	n := uint64(len(s))
	for n >= 0x80 {
		b.WriteByte(byte(n) | 0x80)
		n >>= 7
	}
	b.WriteByte(byte(n))
	b.WriteString(s)
}

// auditNextString splits the first length-prefixed string off data.
func auditNextString(data string) (s, rest string) {
	var n uint64
	i := 0
	for shift := 0; ; shift += 7 {
		c := data[i]
		i++
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	data = data[i:]
	return data[:n], data[n:]
}

// field returns the string at position i (one of the ap constants).
func (p *auditPacked) field(i int) string {
	data := p.data
	var s string
	for range i + 1 {
		s, data = auditNextString(data)
	}
	return s
}

// timestamp returns the event's time, in UTC.
func (p *auditPacked) timestamp() time.Time {
	t := time.Unix(p.sec, int64(p.nsec))
	if p.off != 0 {
		return t.In(time.FixedZone("", int(p.off)))
	}
	return t.UTC()
}

// eventType returns the event's type.
func (p *auditPacked) eventType() string {
	if p.etype == auditOtherType {
		return p.field(apRawType)
	}
	return auditEventTypes[p.etype]
}

// event unpacks the event into a copy the caller may keep.
func (p *auditPacked) event() AuditEvent {
	ev := AuditEvent{Timestamp: p.timestamp(), Success: p.ok, Seq: p.seq}
	data := p.data
	for _, s := range auditPackedStrings(&ev) {
		*s, data = auditNextString(data)
	}
	ev.EventType, data = auditNextString(data)
	if p.etype != auditOtherType {
		ev.EventType = auditEventTypes[p.etype]
	}
	ev.Severity, data = auditNextString(data)
	if p.sev != 0 {
		ev.Severity = auditSeverities[p.sev]
	}
	for data != "" {
		var k, v string
		k, data = auditNextString(data)
		v, data = auditNextString(data)
		if ev.Metadata == nil {
			ev.Metadata = make(map[string]string)
		}
		ev.Metadata[k] = v
	}
	return ev
}

// before reports whether the event happened before t.
func (p *auditPacked) before(t time.Time) bool {
	s := t.Unix()
	return p.sec < s || p.sec == s && int(p.nsec) < t.Nanosecond()
}

// auditMatch reports whether p passes every filter of q.
func auditMatch(p *auditPacked, q *AuditQuery, minRank int) bool {
	switch {
	case q.EventType != "" && p.eventType() != q.EventType,
		q.Success != nil && p.ok != *q.Success,
		minRank > 0 && int(p.sev) < minRank,
		!q.Since.IsZero() && p.before(q.Since),
		!q.Until.IsZero() && !p.before(q.Until):
		return false
	}
	for _, f := range [...]struct {
		want string
		at   int
	}{{q.Actor, apActor}, {q.Action, apAction}, {q.SourceIP, apSourceIP}, {q.SessionID, apSession}} {
		if f.want != "" && p.field(f.at) != f.want {
			return false
		}
	}
	return true
}

// auditCollect returns up to the query's limit of the ring's events that
// match q, newest first, as copies the caller may keep.
func auditCollect(r *auditRing, q AuditQuery) ([]AuditEvent, error) {
	limit, minRank, err := auditCheckQuery(q)
	if err != nil {
		return nil, err
	}
	out := []AuditEvent{}
	r.newestFirst(func(p *auditPacked) bool {
		if auditMatch(p, &q, minRank) {
			out = append(out, p.event())
		}
		return len(out) < limit
	})
	return out, nil
}
