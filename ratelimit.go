package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Limit is a rate of events per second. Inf means unlimited; 0 means no
// refill at all (the bucket's initial burst is all there ever is).
type Limit float64

// Inf is the unlimited rate: every request is admitted, whatever its size.
const Inf = Limit(math.MaxFloat64)

// rlInfDuration is the "never" duration reported by DelayFrom, Decision.RetryAfter
// and friends when a wait cannot be represented (zero rate, tiny rate, n > burst).
const rlInfDuration = time.Duration(math.MaxInt64)

// rlMaxSeconds is the largest number of seconds a time.Duration can hold.
const rlMaxSeconds = float64(math.MaxInt64) / 1e9

// ErrRateLimited reports a request refused by one of our token buckets. The
// HTTP layer answers it with 429 and Retry-After; the breaker excludes it and
// retry never retries it.
var ErrRateLimited = errors.New("rate limited")

// Limiter is a token bucket: it holds at most Burst tokens, refills at Limit
// tokens per second, and each event takes one token (n for AllowN/ReserveN/WaitN).
// It starts full, refills lazily on each call (no goroutines, no timers except
// inside Wait) and is safe for concurrent use.
//
// The methods taking a time (AllowN, ReserveN, Decide, TokensAt, SetLimitAt,
// SetBurstAt) are the seams for tests; the others read time.Now. A timestamp
// earlier than the latest one seen adds no tokens and does not move the
// bucket's clock back (stricter than x/time/rate, go#56287).
//
// Edge cases: with Inf every request is admitted, even n > burst. With rate 0
// and burst b > 0 exactly b events are ever admitted. Burst 0 with a finite
// rate denies every event of size ≥ 1 (deny-all); AllowN(t, 0) is always true.
// The zero Limiter has rate 0 and burst 0, so it denies everything.
type Limiter struct {
	mu        sync.Mutex
	limit     Limit
	burst     int
	window    time.Duration // cached ceil(burst/limit) seconds
	tokens    float64       // may be negative after reservations
	last      time.Time     // when tokens was last brought up to date
	lastEvent time.Time     // timeToAct of the latest reservation
}

// NewLimiter returns a full limiter refilling at r tokens per second with
// capacity b. b == 0 with a finite r means deny-all (see Limiter).
func NewLimiter(r Limit, b int) *Limiter {
	if b < 0 {
		b = 0
	}
	return &Limiter{limit: r, burst: b, tokens: float64(b), window: rlWindow(r, b)}
}

// Decision is the outcome of one Decide call and everything the HTTP layer
// needs for the RateLimit, RateLimit-Policy and Retry-After headers.
type Decision struct {
	Allowed    bool
	Limit      int           // burst (quota q)
	Remaining  int           // floor(tokens) after this decision, ≥ 0
	Reset      time.Duration // time until the next token accrues (0 when full)
	RetryAfter time.Duration // when !Allowed: time until 1 token is available (math.MaxInt64 = never)
	Window     time.Duration // ceil(b/r) seconds, the policy window w; 0 when r is Inf or 0
}

// Limit returns the current rate.
func (l *Limiter) Limit() Limit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// Burst returns the current bucket capacity.
func (l *Limiter) Burst() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.burst
}

// Tokens returns the number of tokens available now.
func (l *Limiter) Tokens() float64 { return l.TokensAt(time.Now()) }

// TokensAt returns the number of tokens available at t (negative while
// reservations are outstanding). It does not change the limiter.
func (l *Limiter) TokensAt(t time.Time) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, tokens := rlAdvance(l.tokens, l.last, t, l.limit, l.burst)
	return tokens
}

// SetLimitAt changes the rate at t. Tokens earned at the old rate up to t are
// kept.
func (l *Limiter) SetLimitAt(t time.Time, r Limit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last, l.tokens = rlAdvance(l.tokens, l.last, t, l.limit, l.burst)
	l.limit = r
	l.window = rlWindow(r, l.burst)
}

// SetBurstAt changes the capacity at t. Lowering it clamps the tokens held;
// raising it adds none.
func (l *Limiter) SetBurstAt(t time.Time, b int) {
	if b < 0 {
		b = 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last, l.tokens = rlAdvance(l.tokens, l.last, t, l.limit, l.burst)
	l.burst = b
	l.tokens = min(l.tokens, float64(b))
	l.window = rlWindow(l.limit, b)
}

// Allow reports whether one event may happen now, taking its token if so.
func (l *Limiter) Allow() bool { return l.AllowN(time.Now(), 1) }

// AllowN reports whether n events may happen at t, taking n tokens if so. A
// refusal consumes nothing and leaves the limiter unchanged.
func (l *Limiter) AllowN(t time.Time, n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok, _, _ := l.reserveLocked(t, n, 0)
	return ok
}

// Decide takes one token at t if available and reports the outcome with
// everything needed for rate-limit headers, in one lock acquisition and with no
// allocation.
func (l *Limiter) Decide(t time.Time) Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := rlDecide(&l.tokens, &l.last, t, l.limit, l.burst, l.window)
	if d.Allowed && l.limit != Inf {
		l.lastEvent = l.last
	}
	return d
}

// Reservation is a claim on tokens granted by ReserveN: the holder may act
// after DelayFrom(now), or Cancel to give the tokens back.
type Reservation struct {
	ok        bool
	lim       *Limiter
	tokens    int
	timeToAct time.Time
	limit     Limit // the rate when the reservation was made
	cancelled bool  // guarded by lim.mu
}

// Reserve is ReserveN(time.Now(), 1).
func (l *Limiter) Reserve() *Reservation { return l.ReserveN(time.Now(), 1) }

// ReserveN reserves n tokens at t; the bucket may go into debt. The
// reservation is not OK (and changes nothing) when n exceeds the burst (unless
// the rate is Inf) or when the tokens would never accrue (rate 0, or a wait too
// long for a time.Duration).
func (l *Limiter) ReserveN(t time.Time, n int) *Reservation {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok, act, _ := l.reserveLocked(t, n, rlInfDuration)
	return &Reservation{ok: ok, lim: l, tokens: n, timeToAct: act, limit: l.limit}
}

// OK reports whether the limiter granted the reservation.
func (r *Reservation) OK() bool { return r.ok }

// DelayFrom returns how long after t the holder must wait before acting: 0
// means act now, math.MaxInt64 means never (the reservation is not OK).
func (r *Reservation) DelayFrom(t time.Time) time.Duration {
	if !r.ok {
		return rlInfDuration
	}
	return max(r.timeToAct.Sub(t), 0)
}

// Cancel is CancelAt(time.Now()).
func (r *Reservation) Cancel() { r.CancelAt(time.Now()) }

// CancelAt gives the reserved tokens back at t, as far as later reservations
// have not already relied on them. It is a no-op once the reservation's time
// to act has passed, on a second call, and for a reservation that is not OK.
func (r *Reservation) CancelAt(t time.Time) {
	if !r.ok {
		return
	}
	l := r.lim
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.cancelled || l.limit == Inf || r.tokens == 0 || r.timeToAct.Before(t) {
		return
	}
	r.cancelled = true
	// Tokens reserved after this one were granted on the assumption that ours
	// were spent; only the rest can come back.
	restore := float64(r.tokens) - float64(r.limit)*l.lastEvent.Sub(r.timeToAct).Seconds()
	if restore <= 0 {
		return
	}
	last, tokens := rlAdvance(l.tokens, l.last, t, l.limit, l.burst)
	l.last, l.tokens = last, min(tokens+restore, float64(l.burst))
	if r.timeToAct.Equal(l.lastEvent) && r.limit > 0 {
		prev := r.timeToAct.Add(-rlWaitFor(0, float64(r.tokens), r.limit))
		if !prev.Before(last) {
			l.lastEvent = prev
		}
	}
}

// Wait is WaitN(ctx, 1).
func (l *Limiter) Wait(ctx context.Context) error { return l.WaitN(ctx, 1) }

// WaitN blocks until n tokens are available or ctx ends. In order (as
// x/time/rate): n above the burst is an error (unless the rate is Inf); a ctx
// that is already done returns ctx.Err() and consumes nothing; a wait that
// would pass ctx's deadline returns at once, consumes nothing, and matches
// errors.Is(err, context.DeadlineExceeded). A wait cancelled midway returns
// ctx.Err() and gives its tokens back.
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	l.mu.Lock()
	burst, limit := l.burst, l.limit
	l.mu.Unlock()
	if n > burst && limit != Inf {
		return fmt.Errorf("rate: wait(n=%d) exceeds burst %d: %w", n, burst, ErrRateLimited)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	maxWait := rlInfDuration
	if deadline, ok := ctx.Deadline(); ok {
		maxWait = max(deadline.Sub(now), 0)
	}
	l.mu.Lock()
	ok, act, wait := l.reserveLocked(now, n, maxWait)
	r := Reservation{ok: ok, lim: l, tokens: n, timeToAct: act, limit: l.limit}
	l.mu.Unlock()
	switch {
	case !ok && wait == rlInfDuration:
		return fmt.Errorf("rate: wait(n=%d) can never be satisfied at rate %g: %w", n, float64(limit), ErrRateLimited)
	case !ok:
		return fmt.Errorf("rate: wait(n=%d) of %v would exceed the context deadline: %w", n, wait, context.DeadlineExceeded)
	case wait == 0:
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		r.CancelAt(time.Now())
		return ctx.Err()
	}
}

// reserveLocked takes n tokens at t if they are available within maxWait and
// returns when the holder may act and the wait from t's effective time. A
// refusal leaves the limiter unchanged and reports the wait that would have
// been needed (rlInfDuration for never).
func (l *Limiter) reserveLocked(t time.Time, n int, maxWait time.Duration) (bool, time.Time, time.Duration) {
	if n < 0 {
		return false, time.Time{}, rlInfDuration
	}
	if l.limit == Inf {
		return true, t, 0
	}
	if n > l.burst {
		return false, time.Time{}, rlInfDuration
	}
	now, tokens := rlAdvance(l.tokens, l.last, t, l.limit, l.burst)
	tokens -= float64(n)
	wait := rlWaitFor(tokens, 0, l.limit)
	if wait > maxWait || wait == rlInfDuration {
		return false, time.Time{}, wait
	}
	l.last, l.tokens = now, tokens
	l.lastEvent = now.Add(wait)
	return true, l.lastEvent, wait
}

// rlAdvance brings a bucket holding tokens as of last up to t and returns the
// effective time (never before last: an earlier t adds nothing) and the tokens
// then, capped at burst exactly.
func rlAdvance(tokens float64, last, t time.Time, r Limit, burst int) (time.Time, float64) {
	if t.Before(last) {
		t = last
	}
	b := float64(burst)
	if r == Inf {
		return t, b
	}
	if r <= 0 || tokens >= b {
		return t, min(tokens, b)
	}
	// Compare the accrual with what is missing instead of adding first, so a
	// long idle period (even centuries, where Sub saturates) lands on b exactly.
	add := t.Sub(last).Seconds() * float64(r)
	if add >= b-tokens {
		return t, b
	}
	return t, tokens + add
}

// rlWaitFor returns the smallest duration e such that a bucket holding tokens
// reaches target after e at rate r, using the same arithmetic as rlAdvance so
// that acting exactly e later succeeds. It returns rlInfDuration when that never
// happens or does not fit in a time.Duration.
func rlWaitFor(tokens, target float64, r Limit) time.Duration {
	need := target - tokens
	if need <= 0 {
		return 0
	}
	if r <= 0 {
		return rlInfDuration
	}
	secs := need / float64(r)
	if secs >= rlMaxSeconds {
		return rlInfDuration
	}
	d := time.Duration(math.Ceil(secs * 1e9))
	// Floating-point rounding can leave the product a hair short; a few
	// nanoseconds more always fix it for any rate whose wait fits a Duration.
	for i := 0; i < 8 && tokens+d.Seconds()*float64(r) < target; i++ {
		d++
	}
	return d
}

// rlWindow returns ceil(b/r) whole seconds, or 0 when r is Inf, 0 or b is 0.
func rlWindow(r Limit, b int) time.Duration {
	if r == Inf || r <= 0 || b <= 0 {
		return 0
	}
	secs := math.Ceil(float64(b) / float64(r))
	if secs >= rlMaxSeconds {
		return rlInfDuration / time.Second * time.Second
	}
	return time.Duration(secs) * time.Second
}

// rlDecide is the single-token decision shared by Limiter and KeyedLimiter: it
// updates *tokens and *last when a token is taken and reports the headers' view.
func rlDecide(tokens *float64, last *time.Time, t time.Time, r Limit, burst int, window time.Duration) Decision {
	d := Decision{Limit: burst, Window: window}
	if r == Inf {
		d.Allowed, d.Remaining = true, burst
		return d
	}
	now, avail := rlAdvance(*tokens, *last, t, r, burst)
	if avail < 1 {
		// Refused: RetryAfter is exact (TB15); the next token is the same one.
		d.RetryAfter = rlWaitFrom(*tokens, *last, t, 1, r, burst)
		d.Reset = d.RetryAfter
		return d
	}
	avail--
	*tokens, *last = avail, now
	d.Allowed = true
	d.Remaining = int(avail) // avail ≥ 0 here, so truncation is floor
	if avail < float64(burst) {
		// Informational (whole seconds in the header), so no exactness loop.
		d.Reset = rlApproxWait(float64(d.Remaining+1)-avail, r) + now.Sub(t)
	}
	return d
}

// rlApproxWait returns ceil(need/r) as a duration, or rlInfDuration if it does
// not fit.
func rlApproxWait(need float64, r Limit) time.Duration {
	if r <= 0 {
		return rlInfDuration
	}
	ns := need / float64(r) * 1e9
	if ns >= float64(math.MaxInt64) {
		return rlInfDuration
	}
	return time.Duration(math.Ceil(ns))
}

// rlWaitFrom returns how long after t a bucket holding tokens as of last holds
// target tokens, measured exactly as a later call at t+result would measure it.
func rlWaitFrom(tokens float64, last, t time.Time, target float64, r Limit, burst int) time.Duration {
	if target > float64(burst) {
		return rlInfDuration
	}
	e := rlWaitFor(tokens, target, r)
	if e == rlInfDuration {
		return rlInfDuration
	}
	if last.IsZero() {
		last = t
	}
	if at := last.Add(e); at.After(t) {
		return at.Sub(t)
	}
	return 0
}
