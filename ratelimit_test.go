package main

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// rlT0 is an arbitrary fixed instant for explicit-time tests.
var rlT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// rlD is x/time/rate's test step: tN = t0 + N·rlD.
const rlD = 100 * time.Millisecond

func rlAt(n int) time.Time { return rlT0.Add(time.Duration(n) * rlD) }

// rlAllowStep is one AllowN call of a golden vector.
type rlAllowStep struct {
	t  time.Time
	n  int
	ok bool
}

func rlRunAllow(t *testing.T, l *Limiter, steps []rlAllowStep) {
	t.Helper()
	for i, s := range steps {
		if got := l.AllowN(s.t, s.n); got != s.ok {
			t.Errorf("step %d: AllowN(t0+%v, %d) = %v; want %v", i, s.t.Sub(rlT0), s.n, got, s.ok)
		}
	}
}

// TB1: a new limiter admits exactly b events at one instant.
func TestLimiterBurstAtOneInstant(t *testing.T) {
	for _, tc := range []struct {
		r Limit
		b int
	}{{1, 1}, {1, 5}, {10, 3}, {0.5, 20}, {1000, 100}} {
		l := NewLimiter(tc.r, tc.b)
		got := 0
		for range tc.b + 10 {
			if l.AllowN(rlT0, 1) {
				got++
			}
		}
		if got != tc.b {
			t.Errorf("NewLimiter(%v, %d): admitted %d at one instant; want %d", tc.r, tc.b, got, tc.b)
		}
	}
}

// TB1, TB6: 15 goroutines on (1, 5) at frozen time: exactly 5 admitted.
func TestLimiterSimultaneousRequests(t *testing.T) {
	l := NewLimiter(1, 5)
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for range 15 {
		wg.Go(func() {
			if l.AllowN(rlT0, 1) {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 5 {
		t.Errorf("admitted = %d; want 5", got)
	}
}

// TB2: after draining at t0, Allow at t0+k/r succeeds exactly k times.
func TestLimiterRefillExactlyK(t *testing.T) {
	const r, b = 10, 5
	for k := 0; k <= b; k++ {
		l := NewLimiter(r, b)
		if !l.AllowN(rlT0, b) {
			t.Fatalf("k=%d: draining AllowN(t0, %d) = false", k, b)
		}
		at := rlT0.Add(time.Duration(k) * time.Second / r)
		got := 0
		for range b + 3 {
			if l.AllowN(at, 1) {
				got++
			}
		}
		if got != k {
			t.Errorf("k=%d: admitted %d at t0+k/r; want %d", k, got, k)
		}
	}
	rlRunAllow(t, NewLimiter(10, 1), []rlAllowStep{{rlAt(0), 1, true}, {rlAt(0), 1, false}, {rlAt(1), 1, true}})
}

// TB3: after any idle period the bucket holds exactly b tokens.
func TestLimiterIdleCapsAtBurst(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Limit
		b    int
		idle time.Duration
	}{
		{"one second", 10, 7, time.Second},
		{"exact refill", 10, 7, 700 * time.Millisecond},
		{"100 years", 10, 7, 100 * 365 * 24 * time.Hour},
		{"huge rate", 1e300, 3, time.Hour},
		{"tiny rate long idle", 1e-6, 2, 100 * 365 * 24 * time.Hour},
		{"max duration", 1, 4, time.Duration(math.MaxInt64)},
	} {
		l := NewLimiter(tc.r, tc.b)
		l.AllowN(rlT0, tc.b)
		if got := l.TokensAt(rlT0.Add(tc.idle)); got != float64(tc.b) {
			t.Errorf("%s: TokensAt(t0+idle) = %v; want exactly %d", tc.name, got, tc.b)
		}
		if got := NewLimiter(tc.r, tc.b).TokensAt(rlT0.Add(tc.idle)); got != float64(tc.b) {
			t.Errorf("%s: new limiter TokensAt = %v; want exactly %d", tc.name, got, tc.b)
		}
	}
	if got := NewLimiter(10, 3).Tokens(); got != 3 {
		t.Errorf("Tokens() of a new limiter = %v; want 3", got)
	}
}

// TB4: AllowN(n > b) is false and leaves the state unchanged.
func TestLimiterAllowNAboveBurstChangesNothing(t *testing.T) {
	l := NewLimiter(10, 3)
	before := l.TokensAt(rlT0)
	if l.AllowN(rlT0, 4) {
		t.Errorf("AllowN(t0, 4) on burst 3 = true; want false")
	}
	if got := l.TokensAt(rlT0); got != before {
		t.Errorf("tokens after refused AllowN = %v; want %v", got, before)
	}
	if !l.AllowN(rlT0, 3) {
		t.Errorf("AllowN(t0, 3) after refused AllowN(4) = false; want true")
	}
	if l.ReserveN(rlT0, 4).OK() {
		t.Errorf("ReserveN(t0, 4) on burst 3 OK; want not OK")
	}
	if l.AllowN(rlT0, -1) {
		t.Errorf("AllowN(t0, -1) = true; want false")
	}
}

// TB5: a rejected call consumes nothing.
func TestLimiterRejectionConsumesNothing(t *testing.T) {
	l := NewLimiter(10, 3)
	l.AllowN(rlT0, 2) // 1 token left
	rlRunAllow(t, l, []rlAllowStep{{rlT0, 2, false}, {rlT0, 1, true}, {rlT0, 1, false}})
}

// TB6: x/time/rate's golden vectors.
func TestLimiterGoldenVectors(t *testing.T) {
	t.Run("burst1", func(t *testing.T) {
		rlRunAllow(t, NewLimiter(10, 1), []rlAllowStep{
			{rlAt(0), 1, true}, {rlAt(0), 1, false}, {rlAt(0), 1, false},
			{rlAt(1), 1, true}, {rlAt(1), 2, false}, {rlAt(5), 2, false},
		})
	})
	t.Run("burst3", func(t *testing.T) {
		rlRunAllow(t, NewLimiter(10, 3), []rlAllowStep{
			{rlAt(0), 2, true}, {rlAt(0), 2, false}, {rlAt(0), 1, true},
			{rlAt(1), 4, false},
			{rlAt(2), 1, true}, {rlAt(3), 1, true}, {rlAt(4), 1, true},
			{rlAt(9), 3, true}, {rlAt(9), 0, true},
		})
	})
	t.Run("simple reserve", func(t *testing.T) {
		l := NewLimiter(10, 2)
		for i, tc := range []struct {
			at, act time.Time
		}{{rlAt(0), rlAt(0)}, {rlAt(0), rlAt(2)}, {rlAt(3), rlAt(4)}} {
			r := l.ReserveN(tc.at, 2)
			if !r.OK() {
				t.Fatalf("reservation %d not OK", i)
			}
			if got, want := r.DelayFrom(tc.at), tc.act.Sub(tc.at); got != want {
				t.Errorf("reservation %d: DelayFrom = %v; want %v", i, got, want)
			}
		}
	})
}

// TB7: an unlimited rate admits everything, even with b = 0 and n > b.
func TestLimiterInf(t *testing.T) {
	l := NewLimiter(Inf, 0)
	for i := range 100 {
		if !l.AllowN(rlT0, 1000) {
			t.Fatalf("AllowN(t0, 1000) #%d on Inf = false; want true", i)
		}
	}
	if r := l.ReserveN(rlT0, 50); !r.OK() || r.DelayFrom(rlT0) != 0 {
		t.Errorf("ReserveN on Inf: OK=%v delay=%v; want true, 0", r.OK(), r.DelayFrom(rlT0))
	}
	if err := l.WaitN(context.Background(), 1000); err != nil {
		t.Errorf("WaitN(1000) on Inf = %v; want nil", err)
	}
	if d := l.Decide(rlT0); !d.Allowed || d.RetryAfter != 0 {
		t.Errorf("Decide on Inf = %+v; want allowed", d)
	}
}

// TB8: rate 0 admits exactly b events ever; b = 0 with r > 0 denies all.
func TestLimiterZeroRateAndZeroBurst(t *testing.T) {
	l := NewLimiter(0, 3)
	got := 0
	for i := range 1000 {
		if l.AllowN(rlT0.Add(time.Duration(i)*24*365*time.Hour), 1) {
			got++
		}
	}
	if got != 3 {
		t.Errorf("rate 0 burst 3: admitted %d over 1000 years; want 3", got)
	}
	if err := l.Wait(context.Background()); err == nil {
		t.Errorf("Wait on an empty rate-0 limiter = nil; want an error")
	}
	deny := NewLimiter(10, 0)
	for i := range 50 {
		if deny.AllowN(rlAt(i*10), 1) {
			t.Fatalf("b=0: AllowN at step %d = true; want deny-all", i)
		}
	}
	if d := deny.Decide(rlAt(1000)); d.Allowed || d.RetryAfter != rlInfDuration {
		t.Errorf("b=0 Decide = %+v; want refused with RetryAfter = never", d)
	}
	var zero Limiter
	if zero.AllowN(rlT0, 1) {
		t.Errorf("zero Limiter admitted an event; want deny-all")
	}
}

// TB9: SetLimit keeps earned tokens, a raised rate shortens Wait, SetBurst clamps.
func TestLimiterSetLimitAndBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(0, 1)
		if !l.Allow() || l.Allow() {
			t.Fatalf("rate 0 burst 1: want one Allow then refusal")
		}
		l.SetLimitAt(time.Now(), 10)
		start := time.Now()
		if err := l.Wait(context.Background()); err != nil {
			t.Fatalf("Wait after SetLimit(10) = %v", err)
		}
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Errorf("Wait after SetLimit(0→10) took %v; want 100ms", got)
		}
	})
	l := NewLimiter(10, 10)
	l.AllowN(rlT0, 10)
	l.SetLimitAt(rlT0.Add(500*time.Millisecond), 1)
	if got := l.TokensAt(rlT0.Add(500 * time.Millisecond)); got != 5 {
		t.Errorf("tokens right after SetLimitAt = %v; want 5 (earned at the old rate)", got)
	}
	if got := l.TokensAt(rlT0.Add(1500 * time.Millisecond)); math.Abs(got-6) > 1e-9 {
		t.Errorf("tokens 1s after SetLimitAt(1) = %v; want 6", got)
	}
	if l.Limit() != 1 {
		t.Errorf("Limit() = %v; want 1", l.Limit())
	}
	l = NewLimiter(10, 10)
	l.SetBurstAt(rlT0, 3)
	if got := l.TokensAt(rlT0); got != 3 {
		t.Errorf("tokens after SetBurstAt(3) = %v; want 3", got)
	}
	if l.Burst() != 3 {
		t.Errorf("Burst() = %d; want 3", l.Burst())
	}
	if l.AllowN(rlT0, 4) || !l.AllowN(rlT0, 3) {
		t.Errorf("after SetBurstAt(3): want AllowN(4) refused and AllowN(3) admitted")
	}
	l.SetBurstAt(rlT0, 5)
	if got := l.TokensAt(rlT0); got != 0 {
		t.Errorf("tokens after raising the burst = %v; want 0 (no bonus)", got)
	}
}

// TB10: a tiny rate admits once, then reports an infinite wait, never 0.
func TestLimiterTinyRate(t *testing.T) {
	l := NewLimiter(1e-10, 1)
	if !l.Allow() {
		t.Fatalf("first Allow on (1e-10, 1) = false; want true")
	}
	if l.Allow() {
		t.Errorf("second Allow on (1e-10, 1) = true; want false")
	}
	now := time.Now()
	if d := l.Decide(now); d.Allowed || d.RetryAfter != rlInfDuration || d.Reset != rlInfDuration {
		t.Errorf("Decide = %+v; want refused with RetryAfter and Reset = never", d)
	}
	r := l.ReserveN(now, 1)
	if r.OK() || r.DelayFrom(now) == 0 {
		t.Errorf("ReserveN: OK=%v DelayFrom=%v; want not OK with an infinite delay", r.OK(), r.DelayFrom(now))
	}
	if err := l.Wait(context.Background()); err == nil {
		t.Errorf("Wait on (1e-10, 1) = nil; want an immediate error")
	}
}

// TB11: long-running admission rate stays within [0.999·(b+rT), b+rT+1].
func TestLimiterLongRunningQPS(t *testing.T) {
	const r, b = 100, 100
	const total = 5 * time.Second
	l := NewLimiter(r, b)
	admitted := 0
	var elapsed time.Duration
	for at := time.Duration(0); at < total; at += 2 * time.Millisecond {
		if l.AllowN(rlT0.Add(at), 1) {
			admitted++
		}
		elapsed = at
	}
	// As rate_test.go: ideal over the time actually covered, bounds truncated.
	ideal := b + r*elapsed.Seconds()
	if lo, hi := int(0.999*ideal), int(ideal+1); admitted < lo || admitted > hi {
		t.Errorf("admitted %d over %v; want in [%d, %d]", admitted, elapsed, lo, hi)
	}
}

// TB12: timestamps going backwards add no tokens.
func TestLimiterBackwardsTime(t *testing.T) {
	const r, b = 10, 2
	l := NewLimiter(r, b)
	t1 := rlT0.Add(time.Second)
	admitted := 0
	for i := range 200 {
		at := rlT0
		if i%2 == 1 {
			at = t1
		}
		if l.AllowN(at, 1) {
			admitted++
		}
	}
	if limit := b + r*1; admitted > limit {
		t.Errorf("alternating t1/t0 admitted %d; want ≤ %d", admitted, limit)
	}
	l = NewLimiter(10, 5)
	l.AllowN(t1, 5)
	if got := l.TokensAt(rlT0); got != 0 {
		t.Errorf("TokensAt(earlier) = %v; want 0", got)
	}
	if got := l.TokensAt(t1.Add(rlD)); got != 1 {
		t.Errorf("TokensAt(t1+100ms) after an earlier query = %v; want 1", got)
	}
}

// TB13: Wait's checks in x/time/rate's order, consuming nothing on refusal.
func TestLimiterWaitChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(10, 3)
		if err := l.WaitN(context.Background(), 4); err == nil {
			t.Errorf("WaitN(4) on burst 3 = nil; want an error")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.WaitN(ctx, 1); !errors.Is(err, context.Canceled) {
			t.Errorf("WaitN with a done ctx = %v; want context.Canceled", err)
		}
		if got := l.Tokens(); got != 3 {
			t.Errorf("tokens after cancelled Wait = %v; want 3", got)
		}
		l.AllowN(time.Now(), 3)
		ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := l.WaitN(ctx, 2) // needs 200ms, deadline in 50ms
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitN beyond deadline = %v; want DeadlineExceeded", err)
		}
		if got := time.Since(start); got != 0 {
			t.Errorf("WaitN beyond deadline took %v; want an immediate return", got)
		}
		if got := l.Tokens(); got != 0 {
			t.Errorf("tokens after refused Wait = %v; want 0 (nothing consumed)", got)
		}
		if err := l.WaitN(ctx, 0); err != nil {
			t.Errorf("WaitN(0) = %v; want nil", err)
		}
	})
}

// TB14, TO5: a Wait cancelled midway gives its tokens back.
func TestLimiterWaitCancelReturnsTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(10, 3)
		if err := l.WaitN(context.Background(), 2); err != nil {
			t.Fatalf("first WaitN(2) = %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		if err := l.WaitN(ctx, 3); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled WaitN(3) = %v; want context.Canceled", err)
		}
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Errorf("cancelled WaitN returned after %v; want 100ms", got)
		}
		start = time.Now()
		if err := l.WaitN(context.Background(), 2); err != nil {
			t.Fatalf("WaitN(2) after cancel = %v", err)
		}
		if got := time.Since(start); got != 0 {
			t.Errorf("WaitN(2) after cancel waited %v; want no delay", got)
		}
	})
}

// TB15: RetryAfter = ceil((1−tokens)/r), and retrying then succeeds.
func TestLimiterRetryAfterIsEnough(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		r := Limit(math.Pow(10, rng.Float64()*8-3)) // 1e-3 .. 1e5 per second
		b := 1 + rng.IntN(20)
		l := NewLimiter(r, b)
		at := rlT0
		for {
			at = at.Add(time.Duration(rng.Int64N(int64(time.Second / time.Duration(math.Max(float64(r), 1))))))
			d := l.Decide(at)
			if d.Allowed {
				continue
			}
			tokens := l.TokensAt(at)
			want := time.Duration(math.Ceil((1 - tokens) / float64(r) * 1e9))
			if diff := d.RetryAfter - want; diff < -time.Microsecond || diff > time.Microsecond {
				t.Errorf("case %d (r=%v b=%d): RetryAfter = %v; want ≈ %v", i, r, b, d.RetryAfter, want)
			}
			if !l.AllowN(at.Add(d.RetryAfter), 1) {
				t.Errorf("case %d (r=%v b=%d): AllowN at now+RetryAfter(%v) = false; want true", i, r, b, d.RetryAfter)
			}
			break
		}
	}
}

// TestLimiterDecide checks every field of Decision against the bucket.
func TestLimiterDecide(t *testing.T) {
	l := NewLimiter(2, 5) // window ceil(5/2) = 3s
	tests := []struct {
		at   time.Time
		want Decision
	}{
		{rlT0, Decision{Allowed: true, Limit: 5, Remaining: 4, Reset: 500 * time.Millisecond, Window: 3 * time.Second}},
		{rlT0.Add(250 * time.Millisecond), Decision{Allowed: true, Limit: 5, Remaining: 3, Reset: 250 * time.Millisecond, Window: 3 * time.Second}},
	}
	for i, tc := range tests {
		if got := l.Decide(tc.at); got != tc.want {
			t.Errorf("Decide #%d = %+v; want %+v", i, got, tc.want)
		}
	}
	at := rlT0.Add(250 * time.Millisecond)
	l.AllowN(at, 3) // 3.5 − 3 = 0.5 tokens left
	got := l.Decide(at)
	want := Decision{Limit: 5, Remaining: 0, Reset: 250 * time.Millisecond, RetryAfter: 250 * time.Millisecond, Window: 3 * time.Second}
	if got != want {
		t.Errorf("Decide on empty bucket = %+v; want %+v", got, want)
	}
	if full := NewLimiter(2, 5).Decide(rlT0); full.Reset != 500*time.Millisecond {
		t.Errorf("Reset after one token from a full bucket = %v; want 500ms", full.Reset)
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	l := NewLimiter(1, 1<<40)
	b.ReportAllocs()
	for b.Loop() {
		l.Allow()
	}
}

func BenchmarkLimiterDecide(b *testing.B) {
	l := NewLimiter(1, 1<<40)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		l.Decide(now)
	}
}
