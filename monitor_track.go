package main

import (
	"container/list"
	"strings"
	"time"
)

// monLRU is a string-keyed table that forgets its least recently touched
// key beyond a bound given on insertion. Not safe for concurrent use (the
// SecurityMonitor guards it).
type monLRU[V any] struct {
	ll *list.List // of *monLRUEntry[V], most recently touched first
	m  map[string]*list.Element
}

type monLRUEntry[V any] struct {
	key string
	val V
}

func newMonLRU[V any]() *monLRU[V] {
	return &monLRU[V]{ll: list.New(), m: make(map[string]*list.Element)}
}

// getOrCreate returns key's value, creating it with mk when absent, and
// marks it most recently used; beyond maxKeys keys the oldest are dropped.
func (l *monLRU[V]) getOrCreate(key string, maxKeys int, mk func() V) V {
	if e, ok := l.m[key]; ok {
		l.ll.MoveToFront(e)
		return e.Value.(*monLRUEntry[V]).val
	}
	v := mk()
	l.insert(key, v, maxKeys)
	return v
}

// put sets key to v and marks it most recently used.
func (l *monLRU[V]) put(key string, v V, maxKeys int) {
	if e, ok := l.m[key]; ok {
		e.Value.(*monLRUEntry[V]).val = v
		l.ll.MoveToFront(e)
		return
	}
	l.insert(key, v, maxKeys)
}

func (l *monLRU[V]) insert(key string, v V, maxKeys int) {
	l.m[key] = l.ll.PushFront(&monLRUEntry[V]{key: key, val: v})
	for l.ll.Len() > max(maxKeys, 1) {
		old := l.ll.Remove(l.ll.Back()).(*monLRUEntry[V])
		delete(l.m, old.key)
	}
}

// peek returns key's value without touching it.
func (l *monLRU[V]) peek(key string) (V, bool) {
	if e, ok := l.m[key]; ok {
		return e.Value.(*monLRUEntry[V]).val, true
	}
	var zero V
	return zero, false
}

func (l *monLRU[V]) delete(key string) {
	if e, ok := l.m[key]; ok {
		l.ll.Remove(e)
		delete(l.m, key)
	}
}

func (l *monLRU[V]) len() int { return l.ll.Len() }

// monAuthState holds one source's recent authentication failures.
type monAuthState struct {
	times  []time.Time          // failures within the window, oldest first
	idents map[string]time.Time // identity → latest failure within the window
}

// monMaxIdentities bounds the identities remembered per source; only
// reaching monStuffingIdentities matters.
const monMaxIdentities = 4 * monStuffingIdentities

// record adds a failure at now for identity ("" for none), forgets what
// is older than window, keeps at most maxTimes failure times, and returns
// the failures and distinct identities within the window.
func (st *monAuthState) record(now time.Time, identity string, window time.Duration, maxTimes int) (failures, identities int) {
	drop := 0
	for drop < len(st.times) && now.Sub(st.times[drop]) > window {
		drop++
	}
	if len(st.times)-drop >= maxTimes {
		drop = len(st.times) - maxTimes + 1
	}
	if drop > 0 {
		st.times = append(st.times[:0], st.times[drop:]...)
	}
	st.times = append(st.times, now)
	if identity != "" {
		if st.idents == nil {
			st.idents = make(map[string]time.Time)
		}
		st.idents[identity] = now
	}
	var oldest string
	for id, at := range st.idents {
		if now.Sub(at) > window {
			delete(st.idents, id)
			continue
		}
		if oldest == "" || at.Before(st.idents[oldest]) {
			oldest = id
		}
	}
	if len(st.idents) > monMaxIdentities {
		delete(st.idents, oldest)
	}
	return len(st.times), len(st.idents)
}

// monRateState tracks one rate-limit key's rejections and abuse streak.
type monRateState struct {
	window     monSecondRing
	abuseStart time.Time // start of the current streak at or above the threshold
	abuseLast  time.Time // latest rejection at or above the threshold
}

// monSecondRing counts events per second over the last 60 seconds.
type monSecondRing struct {
	head   int64 // unix second of the newest bucket
	counts [60]uint32
}

// add counts one event at now and returns the events of the minute
// ending at now (60 one-second buckets).
func (r *monSecondRing) add(now time.Time) int {
	sec := now.Unix()
	switch {
	case sec-r.head >= 60:
		r.counts = [60]uint32{}
		r.head = sec
	case sec > r.head:
		for s := r.head + 1; s <= sec; s++ {
			r.counts[monMod(s, 60)] = 0
		}
		r.head = sec
	}
	if sec > r.head-60 {
		r.counts[monMod(sec, 60)]++
	}
	total := 0
	for _, c := range r.counts {
		total += int(c)
	}
	return total
}

// monAccessState holds the source addresses one principal used recently.
type monAccessState struct {
	sources []monSeen
}

type monSeen struct {
	source string
	at     time.Time
}

// record notes source at now, forgets sources older than window, keeps at
// most maxSources (dropping the least recent) and returns how many remain.
func (st *monAccessState) record(now time.Time, source string, window time.Duration, maxSources int) int {
	kept := st.sources[:0]
	found := false
	for _, s := range st.sources {
		if s.source == source {
			s.at, found = now, true
		}
		if now.Sub(s.at) <= window {
			kept = append(kept, s)
		}
	}
	st.sources = kept
	if !found {
		st.sources = append(st.sources, monSeen{source: monClip(source), at: now})
	}
	for len(st.sources) > maxSources {
		oldest := 0
		for i, s := range st.sources {
			if s.at.Before(st.sources[oldest].at) {
				oldest = i
			}
		}
		st.sources = append(st.sources[:oldest], st.sources[oldest+1:]...)
	}
	return len(st.sources)
}

// list returns the remembered sources, comma-separated.
func (st *monAccessState) list() string {
	names := make([]string, len(st.sources))
	for i, s := range st.sources {
		names[i] = s.source
	}
	return strings.Join(names, ",")
}

// monMinutes is the span of monMinuteRing: 24 hours.
const monMinutes = 24 * 60

// monMinuteRing counts events per minute over the last 24 hours.
type monMinuteRing struct {
	minute [monMinutes]int64 // which minute each bucket holds
	counts [monMinutes]int
}

func (r *monMinuteRing) add(now time.Time) {
	m := monFloorDiv(now.Unix(), 60)
	i := monMod(m, monMinutes)
	if r.minute[i] != m {
		r.minute[i], r.counts[i] = m, 0
	}
	r.counts[i]++
}

// sum returns the events of the 24 hours ending at now (minute buckets).
func (r *monMinuteRing) sum(now time.Time) int {
	cur := monFloorDiv(now.Unix(), 60)
	total := 0
	for i, m := range r.minute {
		if m > cur-monMinutes && m <= cur {
			total += r.counts[i]
		}
	}
	return total
}

func monFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func monMod(a, b int64) int64 {
	return a - monFloorDiv(a, b)*b
}
