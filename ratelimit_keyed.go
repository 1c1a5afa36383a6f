package main

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"time"
)

// rlDefaultMaxKeys bounds a KeyedLimiter built with maxKeys ≤ 0: about 10 MB
// of buckets, enough for every principal and client IP a single replica sees
// in a busy hour.
const rlDefaultMaxKeys = 1 << 16

// rlKeysPerShard is the smallest share of maxKeys a shard gets, so that LRU
// eviction inside a shard still approximates global LRU.
const rlKeysPerShard = 64

// rlMaxShards caps lock striping; more shards than cores buys nothing.
const rlMaxShards = 64

// rlEvictScan is how many least recently used buckets an insert into a full
// shard inspects for a full (droppable) one before evicting the oldest.
const rlEvictScan = 8

// KeyedLimiter keeps one token bucket per key (principal or client IP), all
// with the same rate and burst, in a bounded, sharded map; it is safe for
// concurrent use and starts no goroutines.
//
// Memory: at most maxKeys buckets exist at any time. Idle buckets are dropped
// lazily: every decision also checks the least recently used bucket of its
// shard and drops it if it has refilled completely, because a full bucket
// decides exactly as a fresh one does (for non-decreasing times, which Decide
// guarantees). When a shard is at its share of maxKeys, an insert first looks
// at its rlEvictScan least recently used buckets for a full one; if none is
// full it evicts the least recently used bucket anyway. That is the documented
// price of a flood of new keys: the least recently seen key gets a fresh
// bucket early, memory never grows. Keys are spread by a per-limiter random
// hash seed, so a client cannot aim its keys at one shard.
type KeyedLimiter struct {
	limit  Limit
	burst  int
	window time.Duration
	now    func() time.Time
	seed   maphash.Seed
	mask   uint64
	shards []rlShard
}

// rlShard is one lock stripe of a KeyedLimiter: a map plus an intrusive LRU
// list (head = most recently used).
type rlShard struct {
	mu         sync.Mutex
	m          map[string]*rlEntry
	head, tail *rlEntry
	max        int
	_          [24]byte // pad to a cache line so neighbouring shard locks do not share one
}

// rlEntry is one key's bucket and its place in the shard's LRU list.
type rlEntry struct {
	key        string
	tokens     float64
	last       time.Time
	prev, next *rlEntry
}

// NewKeyedLimiter returns a keyed limiter giving each key a bucket of rate r
// and burst b, holding at most maxKeys buckets (maxKeys ≤ 0 means 65536). now
// is the clock used by Decide (nil means time.Now).
func NewKeyedLimiter(r Limit, b int, maxKeys int, now func() time.Time) *KeyedLimiter {
	if b < 0 {
		b = 0
	}
	if maxKeys <= 0 {
		maxKeys = rlDefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	n := 1
	if per := maxKeys / rlKeysPerShard; per > 1 {
		n = 1 << (bits.Len(uint(per)) - 1) // largest power of two ≤ per
	}
	n = min(n, rlMaxShards)
	k := &KeyedLimiter{
		limit:  r,
		burst:  b,
		window: rlWindow(r, b),
		now:    now,
		seed:   maphash.MakeSeed(),
		mask:   uint64(n - 1),
		shards: make([]rlShard, n),
	}
	for i := range k.shards {
		s := &k.shards[i]
		s.max = maxKeys / n
		if i < maxKeys%n {
			s.max++
		}
		s.m = make(map[string]*rlEntry)
	}
	return k
}

// Decide takes one token from key's bucket now (per the limiter's clock).
// It does not allocate for a key that already has a bucket.
func (k *KeyedLimiter) Decide(key string) Decision { return k.DecideAt(key, k.now()) }

// DecideAt takes one token from key's bucket at t. Times should not decrease
// for a given limiter; an earlier t adds no tokens to an existing bucket.
func (k *KeyedLimiter) DecideAt(key string, t time.Time) Decision {
	s := &k.shards[maphash.String(k.seed, key)&k.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil {
		e = s.insert(key, t, k)
	} else {
		s.moveToFront(e)
	}
	d := rlDecide(&e.tokens, &e.last, t, k.limit, k.burst, k.window)
	// Amortised sweep: one look at the coldest bucket per decision.
	if old := s.tail; old != nil && old != e && k.full(old, t) {
		s.remove(old)
	}
	return d
}

// Len returns the number of buckets currently held.
func (k *KeyedLimiter) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// full reports whether e has refilled completely by t, i.e. whether dropping
// it changes no later decision.
func (k *KeyedLimiter) full(e *rlEntry, t time.Time) bool {
	_, tokens := rlAdvance(e.tokens, e.last, t, k.limit, k.burst)
	return tokens >= float64(k.burst)
}

// insert adds a fresh, full bucket for key, making room first if the shard is
// at capacity. The caller holds s.mu.
func (s *rlShard) insert(key string, t time.Time, k *KeyedLimiter) *rlEntry {
	if len(s.m) >= s.max {
		victim := s.tail
		for e, i := s.tail, 0; e != nil && i < rlEvictScan; e, i = e.prev, i+1 {
			if k.full(e, t) {
				victim = e
				break
			}
		}
		if victim != nil {
			s.remove(victim)
		}
	}
	e := &rlEntry{key: key, tokens: float64(k.burst)}
	s.m[key] = e
	s.pushFront(e)
	return e
}

func (s *rlShard) pushFront(e *rlEntry) {
	e.prev, e.next = nil, s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
}

func (s *rlShard) unlink(e *rlEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *rlShard) moveToFront(e *rlEntry) {
	if s.head == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

func (s *rlShard) remove(e *rlEntry) {
	s.unlink(e)
	delete(s.m, e.key)
}
