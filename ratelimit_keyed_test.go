package main

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"
)

// rlFakeClock is a settable clock for KeyedLimiter and Breaker tests.
type rlFakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *rlFakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *rlFakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestKeyedLimiterMatchesPerKeyLimiters: dropping idle (full) buckets changes
// no decision: a keyed limiter that sweeps agrees, decision for decision,
// with one never-dropped Limiter per key.
func TestKeyedLimiterMatchesPerKeyLimiters(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const r, b = 5, 3
	k := NewKeyedLimiter(r, b, 1000, nil)
	ref := map[string]*Limiter{}
	at := rlT0
	dropped := false
	for i := range 20000 {
		at = at.Add(time.Duration(rng.IntN(int(300 * time.Millisecond))))
		key := "k" + strconv.Itoa(rng.IntN(40))
		if ref[key] == nil {
			ref[key] = NewLimiter(r, b)
		}
		got, want := k.DecideAt(key, at), ref[key].Decide(at)
		if got != want {
			t.Fatalf("op %d key %s: keyed Decide = %+v; per-key Limiter = %+v", i, key, got, want)
		}
		if k.Len() < len(ref) {
			dropped = true
		}
	}
	if !dropped {
		t.Errorf("no idle bucket was ever dropped; the test proves nothing")
	}
}

// TestKeyedLimiterBoundedUnderFlood: 1e5 distinct keys never hold more than
// maxKeys buckets, and keys in use keep working.
func TestKeyedLimiterBoundedUnderFlood(t *testing.T) {
	for _, maxKeys := range []int{1, 7, 100, 1000, 5000} {
		clock := &rlFakeClock{t: rlT0}
		k := NewKeyedLimiter(1, 2, maxKeys, clock.Now)
		for i := range 100_000 {
			k.Decide("flood-" + strconv.Itoa(i))
			if i%1000 == 0 && k.Len() > maxKeys {
				t.Fatalf("maxKeys %d: Len() = %d after %d keys", maxKeys, k.Len(), i+1)
			}
		}
		if got := k.Len(); got > maxKeys || got == 0 {
			t.Errorf("maxKeys %d: Len() = %d after the flood; want in [1, %d]", maxKeys, got, maxKeys)
		}
	}
}

// TestKeyedLimiterEvictionPrefersFullBuckets: at capacity, a bucket that has
// refilled is dropped before a busy older one.
func TestKeyedLimiterEvictionPrefersFullBuckets(t *testing.T) {
	clock := &rlFakeClock{t: rlT0}
	k := NewKeyedLimiter(1, 2, 2, clock.Now) // one shard of 2
	k.Decide("busy")
	k.Decide("busy") // drained, refills in 2s
	k.Decide("light")
	clock.Advance(1500 * time.Millisecond) // "light" full again, "busy" not
	k.Decide("new")
	if got := k.Len(); got != 2 {
		t.Fatalf("Len() = %d; want 2", got)
	}
	// "busy" kept its debt: 1.5 tokens → Remaining 0 after taking one.
	if d := k.Decide("busy"); !d.Allowed || d.Remaining != 0 {
		t.Errorf("busy after eviction of another key = %+v; want allowed with 0 remaining", d)
	}
}

// TestKeyedLimiterDecideNoAlloc: an existing key costs no allocation.
func TestKeyedLimiterDecideNoAlloc(t *testing.T) {
	k := NewKeyedLimiter(1e9, 1<<30, 100, nil)
	k.Decide("principal")
	if n := testing.AllocsPerRun(1000, func() { k.Decide("principal") }); n != 0 {
		t.Errorf("Decide(existing key) allocates %v per call; want 0", n)
	}
	l := NewLimiter(10, 10)
	if n := testing.AllocsPerRun(1000, func() { l.Decide(rlT0) }); n != 0 {
		t.Errorf("Limiter.Decide allocates %v per call; want 0", n)
	}
}

// TB1 (keyed, -race): concurrent callers on shared and private keys at one
// instant each get exactly burst admissions per key.
func TestKeyedLimiterConcurrent(t *testing.T) {
	const b = 5
	k := NewKeyedLimiter(1, b, 1000, func() time.Time { return rlT0 })
	var mu sync.Mutex
	admitted := map[string]int{}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				key := "shared"
				if i%2 == 0 {
					key = "own-" + strconv.Itoa(g)
				}
				if k.Decide(key).Allowed {
					mu.Lock()
					admitted[key]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for key, n := range admitted {
		if n != b {
			t.Errorf("key %s admitted %d; want %d", key, n, b)
		}
	}
	if len(admitted) != 17 {
		t.Errorf("%d keys admitted anything; want 17", len(admitted))
	}
}

// The benchmarks use a burst no run can drain and a rate that never refills
// it, so every call takes the "allowed, existing key" path and no bucket
// becomes droppable.
func BenchmarkKeyedLimiterDecide(b *testing.B) {
	k := NewKeyedLimiter(1, 1<<40, 10000, nil)
	k.Decide("principal")
	b.ReportAllocs()
	for b.Loop() {
		k.Decide("principal")
	}
}

// BenchmarkKeyedLimiterDecideAt is the request path's form: the request's
// arrival time is passed in, so no clock is read here.
func BenchmarkKeyedLimiterDecideAt(b *testing.B) {
	k := NewKeyedLimiter(1, 1<<40, 10000, nil)
	now := time.Now()
	k.DecideAt("principal", now)
	b.ReportAllocs()
	for b.Loop() {
		k.DecideAt("principal", now)
	}
}

func BenchmarkKeyedLimiterDecideParallel(b *testing.B) {
	k := NewKeyedLimiter(1, 1<<40, 10000, nil)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "principal-" + strconv.Itoa(i)
		k.Decide(keys[i])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(keys))
		for pb.Next() {
			k.Decide(keys[i%len(keys)])
			i++
		}
	})
}
