package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// BreakerState is the state of a circuit breaker.
type BreakerState int

// The breaker states. Their String forms are the metric label values.
const (
	StateClosed BreakerState = iota
	StateHalfOpen
	StateOpen
)

// String returns "closed", "half_open" or "open".
func (s BreakerState) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateHalfOpen:
		return "half_open"
	case StateOpen:
		return "open"
	}
	return fmt.Sprintf("unknown(%d)", int(s))
}

// ErrOpen is matched (errors.Is) by every rejection of an open breaker; the
// concrete error is *OpenError, which carries the remaining open time.
var ErrOpen = errors.New("circuit breaker is open")

// ErrTooManyRequests rejects a call while the half-open breaker already has
// its full budget of probes in flight.
var ErrTooManyRequests = errors.New("circuit breaker is half-open and its probes are busy")

// OpenError is the rejection of an open (or forced-open) breaker. Remaining
// is how long until it admits a probe; it feeds Retry-After.
type OpenError struct {
	Name      string
	Remaining time.Duration
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("circuit breaker %q is open for another %v", e.Name, e.Remaining)
}

// Is makes errors.Is(err, ErrOpen) true.
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// Counts are the breaker's counters for the current state (and, in window
// mode, the current closed interval). Requests counts admitted calls, so
// Requests = TotalSuccesses + TotalFailures + TotalExclusions + in flight.
type Counts struct {
	Requests             uint32
	TotalSuccesses       uint32
	TotalFailures        uint32
	TotalExclusions      uint32
	ConsecutiveSuccesses uint32
	ConsecutiveFailures  uint32
}

// BreakerSettings configures NewBreaker. Zero fields take the documented
// defaults.
type BreakerSettings struct {
	Name             string
	FailureThreshold int           // consecutive failures that open it (default 5); in window mode, failures within Window
	SuccessThreshold int           // half-open probes admitted, and successes needed to close (default 2)
	OpenTimeout      time.Duration // how long it stays open before a probe (default 60s)
	// Window > 0 switches to rolling-window mode: the breaker opens when at
	// least FailureThreshold failures completed within the last Window (not
	// necessarily consecutive) and at least MinRequests calls completed within
	// it. Counts are also zeroed every Window while closed. MinRequests alone
	// (Window 0) keeps consecutive mode but never opens before MinRequests
	// non-excluded calls completed in the closed state.
	Window      time.Duration
	MinRequests int
	// IsExcluded picks outcomes that are neither success nor failure. Default:
	// context.Canceled, context.DeadlineExceeded that is not ErrTimeout (the
	// caller's own deadline), ErrFull, ErrRateLimited, and errors implementing
	// interface{ Excluded() bool } that return true.
	IsExcluded func(error) bool
	// IsSuccessful decides the remaining outcomes (default err == nil).
	IsSuccessful func(error) bool
	// OnStateChange is called after the breaker's lock is released, exactly once
	// per real transition, serialised and in transition order (possibly on the
	// goroutine of a later caller). It may call the breaker's methods.
	OnStateChange func(name string, from, to BreakerState)
	Now           func() time.Time // default time.Now
}

// Breaker is a circuit breaker (closed → open → half-open → closed) after
// sony/gobreaker, with the fixes of RESILIENCE.md CB1–15: it opens on the
// FailureThreshold-th consecutive failure; after OpenTimeout the next caller
// is admitted as a probe (evaluated lazily, no timers); half-open admits at
// most SuccessThreshold probes in total, closes after that many consecutive
// successes and reopens (with a fresh timeout) on the first failure. Results
// of calls admitted before a transition are dropped (generations). A hung
// probe pins half-open until its done is called, so wrap calls in a timeout.
// A Breaker is safe for concurrent use.
type Breaker struct {
	name             string
	failureThreshold uint32
	successThreshold uint32
	minRequests      uint32
	openTimeout      time.Duration
	window           time.Duration
	isExcluded       func(error) bool
	isSuccessful     func(error) bool
	onStateChange    func(string, BreakerState, BreakerState)
	now              func() time.Time
	tickets          sync.Pool // *cbTicket, so Allow allocates only its done closure

	// stateHint mirrors state for lock-free reads. Calls in the closed state
	// of consecutive mode need no clock (time.Now costs ~50 ns on some VMs),
	// so admit and record skip it when the hint says closed; a stale hint is
	// caught under the lock and the clock read there.
	stateHint atomic.Int32

	mu         sync.Mutex
	state      BreakerState
	gen        uint64 // bumped on every transition and mode toggle; 0 is never used
	epoch      uint64 // bumped with gen and on every closed-interval reset
	counts     Counts
	probes     uint32    // half-open slots in use: admitted minus excluded
	expiry     time.Time // open: when a probe may go; closed in window mode: next interval reset
	forced     bool
	disabled   bool
	failTimes  cbRing // window mode: completion times of the latest failures
	callTimes  cbRing // window mode: completion times of the latest calls
	pending    []cbTransition
	delivering bool
}

// cbTransition is a state change waiting for OnStateChange.
type cbTransition struct{ from, to BreakerState }

// cbTicket makes a done function single-use: a done call only counts if it
// advances the lease it was issued with, so a stale second call of a done
// whose ticket was recycled is a no-op.
type cbTicket struct{ lease atomic.Uint64 }

// cbOutcome classifies a call's error before the breaker's lock is taken.
type cbOutcome int

const (
	cbSuccess cbOutcome = iota
	cbFailure
	cbExcluded
)

// NewBreaker returns a closed breaker configured by s.
func NewBreaker(s BreakerSettings) *Breaker {
	b := &Breaker{
		name:             s.Name,
		failureThreshold: cbPositive(s.FailureThreshold, 5),
		successThreshold: cbPositive(s.SuccessThreshold, 2),
		minRequests:      uint32(max(s.MinRequests, 0)),
		openTimeout:      s.OpenTimeout,
		window:           max(s.Window, 0),
		isExcluded:       s.IsExcluded,
		isSuccessful:     s.IsSuccessful,
		onStateChange:    s.OnStateChange,
		now:              s.Now,
		gen:              1,
		epoch:            1,
	}
	if b.openTimeout <= 0 {
		b.openTimeout = 60 * time.Second
	}
	if b.isExcluded == nil {
		b.isExcluded = cbDefaultExcluded
	}
	if b.isSuccessful == nil {
		b.isSuccessful = func(err error) bool { return err == nil }
	}
	if b.now == nil {
		b.now = time.Now
	}
	b.tickets.New = func() any { return new(cbTicket) }
	if b.window > 0 {
		b.failTimes = cbRing{ts: make([]int64, b.failureThreshold)}
		b.callTimes = cbRing{ts: make([]int64, b.minRequests)}
		b.expiry = b.now().Add(b.window)
	}
	return b
}

func cbPositive(v, def int) uint32 {
	if v <= 0 {
		return uint32(def)
	}
	return uint32(v)
}

// cbDefaultExcluded is the default BreakerSettings.IsExcluded.
func cbDefaultExcluded(err error) bool {
	if err == nil || errors.Is(err, ErrTimeout) {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrFull) || errors.Is(err, ErrRateLimited) {
		return true
	}
	var ex interface{ Excluded() bool }
	return errors.As(err, &ex) && ex.Excluded()
}

// Allow asks to make one call. On success the caller must call done exactly
// once with the call's error (a second call is a no-op). On rejection err is
// an *OpenError (errors.Is(err, ErrOpen)) or ErrTooManyRequests and done is nil.
func (b *Breaker) Allow() (done func(err error), err error) {
	gen, epoch, err := b.admit()
	if err != nil {
		return nil, err
	}
	t := b.tickets.Get().(*cbTicket)
	lease := t.lease.Load()
	return func(err error) {
		if !t.lease.CompareAndSwap(lease, lease+1) {
			return
		}
		b.tickets.Put(t)
		b.record(gen, epoch, b.classify(err))
	}, nil
}

// Ticket is one admission from AllowTicket: the generation its result
// belongs to. It is a plain value, so admission allocates nothing.
type Ticket struct{ gen, epoch uint64 }

// AllowTicket is the allocation-free form of Allow for hot paths: on
// success the caller must pass the ticket to Done exactly once (like a
// mutex's Unlock, a second Done would count the call twice).
func (b *Breaker) AllowTicket() (Ticket, error) {
	gen, epoch, err := b.admit()
	return Ticket{gen: gen, epoch: epoch}, err
}

// Done records the outcome of the call admitted with t.
func (b *Breaker) Done(t Ticket, err error) {
	b.record(t.gen, t.epoch, b.classify(err))
}

// Execute runs fn if the breaker admits it and records its outcome. A
// rejection returns the breaker's error without calling fn. A panic in fn is
// recorded as a failure and keeps propagating (with its original stack).
func (b *Breaker) Execute(fn func() error) error {
	gen, epoch, err := b.admit()
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		if !finished {
			b.record(gen, epoch, cbFailure)
		}
	}()
	err = fn()
	finished = true
	b.record(gen, epoch, b.classify(err))
	return err
}

// State returns the current state, moving open to half-open if the open
// timeout has passed. While forced open it reports StateOpen, while disabled
// StateClosed.
func (b *Breaker) State() BreakerState {
	now := b.now()
	b.mu.Lock()
	moved := b.advance(now)
	s := b.state
	switch {
	case b.forced:
		s = StateOpen
	case b.disabled:
		s = StateClosed
	}
	b.mu.Unlock()
	b.afterUnlock(moved)
	return s
}

// Counts returns a copy of the current counters.
func (b *Breaker) Counts() Counts {
	now := b.now()
	b.mu.Lock()
	moved := b.advance(now)
	c := b.counts
	b.mu.Unlock()
	b.afterUnlock(moved)
	return c
}

// RemainingOpen returns how long until an open breaker admits a probe: 0 when
// not open, OpenTimeout while forced open.
func (b *Breaker) RemainingOpen() time.Duration {
	now := b.now()
	b.mu.Lock()
	moved := b.advance(now)
	r := b.remainingLocked(now)
	b.mu.Unlock()
	b.afterUnlock(moved)
	return r
}

// ForceOpen(true) rejects every call with an *OpenError without any state
// transition or OnStateChange; ForceOpen(false) resumes the state machine
// where it was, with zeroed counts. Results of calls in flight across a
// toggle are dropped. Force-open takes precedence over Disable.
func (b *Breaker) ForceOpen(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.forced != on {
		b.forced = on
		b.newGeneration()
	}
}

// Disable(true) admits every call and records nothing (no counts, no
// transitions); Disable(false) resumes the state machine where it was, with
// zeroed counts. Results of calls in flight across a toggle are dropped.
func (b *Breaker) Disable(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.disabled != on {
		b.disabled = on
		b.newGeneration()
	}
}

// admit decides whether one call may go and returns the generation and epoch
// its result belongs to (gen 0: record nothing).
func (b *Breaker) admit() (gen, epoch uint64, err error) {
	var now time.Time
	if !b.clockFree() {
		now = b.now()
	}
	b.mu.Lock()
	if b.forced {
		b.mu.Unlock()
		return 0, 0, &OpenError{Name: b.name, Remaining: b.openTimeout}
	}
	if b.disabled {
		b.mu.Unlock()
		return 0, 0, nil
	}
	if now.IsZero() && b.state != StateClosed {
		now = b.now()
	}
	moved := b.advance(now)
	switch b.state {
	case StateOpen:
		err = &OpenError{Name: b.name, Remaining: b.remainingLocked(now)}
	case StateHalfOpen:
		if b.probes >= b.successThreshold {
			err = ErrTooManyRequests
		} else {
			b.probes++
		}
	}
	if err == nil {
		b.counts.Requests++
		gen, epoch = b.gen, b.epoch
	}
	b.mu.Unlock()
	b.afterUnlock(moved)
	return gen, epoch, err
}

// classify runs the user's predicates outside the lock.
func (b *Breaker) classify(err error) cbOutcome {
	switch {
	case b.isExcluded(err):
		return cbExcluded
	case b.isSuccessful(err):
		return cbSuccess
	}
	return cbFailure
}

// record applies the outcome of a call admitted in gen/epoch.
func (b *Breaker) record(gen, epoch uint64, o cbOutcome) {
	if gen == 0 {
		return
	}
	var now time.Time
	if o == cbFailure || !b.clockFree() {
		now = b.now()
	}
	b.mu.Lock()
	if now.IsZero() && b.state != StateClosed {
		now = b.now()
	}
	moved := b.advance(now)
	if gen == b.gen {
		moved = b.apply(now, epoch == b.epoch, o) || moved
	}
	b.mu.Unlock()
	b.afterUnlock(moved)
}

// clockFree reports whether a closed-state success or admission can skip
// reading the clock: consecutive mode (no window) and, as far as a lock-free
// look tells, closed.
func (b *Breaker) clockFree() bool {
	return b.window == 0 && BreakerState(b.stateHint.Load()) == StateClosed
}

// apply updates counts and state for one outcome of the current generation;
// counted is false for a call admitted in an earlier closed interval, which
// still feeds the rolling window but not Counts. It reports a transition.
func (b *Breaker) apply(now time.Time, counted bool, o cbOutcome) bool {
	c := &b.counts
	switch o {
	case cbExcluded:
		if counted {
			c.TotalExclusions++
		}
		if b.state == StateHalfOpen && b.probes > 0 {
			b.probes--
		}
		return false
	case cbSuccess:
		if counted {
			c.TotalSuccesses++
			c.ConsecutiveSuccesses++
			c.ConsecutiveFailures = 0
		}
		switch b.state {
		case StateHalfOpen:
			if c.ConsecutiveSuccesses >= b.successThreshold {
				return b.transition(StateClosed, now)
			}
		case StateClosed:
			b.callTimes.push(now.UnixNano())
		}
		return false
	}
	if counted {
		c.TotalFailures++
		c.ConsecutiveFailures++
		c.ConsecutiveSuccesses = 0
	}
	switch b.state {
	case StateHalfOpen:
		return b.transition(StateOpen, now)
	case StateClosed:
		if b.window > 0 {
			b.callTimes.push(now.UnixNano())
			b.failTimes.push(now.UnixNano())
			cut := now.Add(-b.window).UnixNano()
			if b.failTimes.fullSince(cut) && b.callTimes.fullSince(cut) {
				return b.transition(StateOpen, now)
			}
		} else if c.ConsecutiveFailures >= b.failureThreshold &&
			c.TotalSuccesses+c.TotalFailures >= b.minRequests {
			return b.transition(StateOpen, now)
		}
	}
	return false
}

// advance performs the time-driven changes due at now: open → half-open after
// the open timeout (a transition, reported) and the closed-interval reset in
// window mode (not a transition). Nothing moves while forced or disabled.
func (b *Breaker) advance(now time.Time) bool {
	if b.forced || b.disabled {
		return false
	}
	switch b.state {
	case StateOpen:
		if now.After(b.expiry) {
			return b.transition(StateHalfOpen, now)
		}
	case StateClosed:
		if b.window > 0 && !now.Before(b.expiry) {
			b.counts = Counts{}
			b.epoch++
			b.expiry = now.Add(b.window)
		}
	}
	return false
}

// transition moves to state to, starting a new generation, and queues the
// OnStateChange call. It reports whether anything changed.
func (b *Breaker) transition(to BreakerState, now time.Time) bool {
	from := b.state
	if from == to {
		return false
	}
	b.state = to
	b.stateHint.Store(int32(to))
	b.newGeneration()
	b.expiry = time.Time{}
	switch to {
	case StateOpen:
		b.expiry = now.Add(b.openTimeout)
	case StateClosed:
		b.failTimes.reset()
		b.callTimes.reset()
		if b.window > 0 {
			b.expiry = now.Add(b.window)
		}
	}
	if b.onStateChange != nil {
		b.pending = append(b.pending, cbTransition{from: from, to: to})
	}
	return true
}

// newGeneration drops the results of calls in flight and zeroes the counts.
func (b *Breaker) newGeneration() {
	b.gen++
	b.epoch++
	b.counts = Counts{}
	b.probes = 0
}

func (b *Breaker) remainingLocked(now time.Time) time.Duration {
	switch {
	case b.forced:
		return b.openTimeout
	case b.state == StateOpen:
		return max(b.expiry.Sub(now), 0)
	}
	return 0
}

// afterUnlock delivers queued OnStateChange calls, one goroutine at a time
// and in order, with the lock released around each callback so it may call
// back into the breaker. A transition made by a callback is delivered by the
// loop already running.
func (b *Breaker) afterUnlock(moved bool) {
	if !moved || b.onStateChange == nil {
		return
	}
	b.mu.Lock()
	if b.delivering {
		b.mu.Unlock()
		return
	}
	b.delivering = true
	for len(b.pending) > 0 {
		tr := b.pending[0]
		b.pending = append(b.pending[:0], b.pending[1:]...)
		b.mu.Unlock()
		b.notify(tr)
		b.mu.Lock()
	}
	b.delivering = false
	b.mu.Unlock()
}

// notify runs the callback; if it panics, delivery is handed back so later
// transitions are still reported, and the panic propagates.
func (b *Breaker) notify(tr cbTransition) {
	ok := false
	defer func() {
		if !ok {
			b.mu.Lock()
			b.delivering = false
			b.mu.Unlock()
		}
	}()
	b.onStateChange(b.name, tr.from, tr.to)
	ok = true
}

// cbRing holds the latest len(ts) timestamps (Unix ns) of some kind of outcome.
type cbRing struct {
	ts   []int64
	next int
	n    int
}

func (r *cbRing) push(t int64) {
	if len(r.ts) == 0 {
		return
	}
	r.ts[r.next] = t
	r.next = (r.next + 1) % len(r.ts)
	r.n = min(r.n+1, len(r.ts))
}

// fullSince reports whether all len(ts) latest timestamps are after cut, i.e.
// whether at least len(ts) outcomes happened since cut. An empty ring is
// always satisfied.
func (r *cbRing) fullSince(cut int64) bool {
	if len(r.ts) == 0 {
		return true
	}
	return r.n == len(r.ts) && r.ts[r.next] > cut
}

func (r *cbRing) reset() { r.next, r.n = 0, 0 }

// Name returns the breaker's label in metrics and logs.
func (b *Breaker) Name() string { return b.name }
