package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var cbErrBoom = errors.New("boom")

// cbRecorder collects OnStateChange calls.
type cbRecorder struct {
	mu  sync.Mutex
	got []string
}

func (r *cbRecorder) record(name string, from, to BreakerState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fmt.Sprintf("%s:%v->%v", name, from, to))
}

func (r *cbRecorder) transitions() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprint(r.got)
}

// cbNew returns a breaker on a fake clock with recorded transitions.
func cbNew(t *testing.T, s BreakerSettings) (*Breaker, *rlFakeClock, *cbRecorder) {
	t.Helper()
	clock := &rlFakeClock{t: rlT0}
	rec := &cbRecorder{}
	if s.Name == "" {
		s.Name = "llm"
	}
	s.Now = clock.Now
	s.OnStateChange = rec.record
	return NewBreaker(s), clock, rec
}

// cbRun executes n calls returning err and counts fn invocations in calls.
func cbRun(b *Breaker, n int, err error, calls *int) error {
	var last error
	for range n {
		last = b.Execute(func() error { *calls++; return err })
	}
	return last
}

func cbWantState(t *testing.T, b *Breaker, want BreakerState) {
	t.Helper()
	if got := b.State(); got != want {
		t.Errorf("State() = %v; want %v", got, want)
	}
}

// CB1: the 5th consecutive failure opens it and returns its own error; the
// next call is rejected without running fn.
func TestBreakerOpensOnFifthFailure(t *testing.T) {
	b, _, rec := cbNew(t, BreakerSettings{})
	calls := 0
	cbRun(b, 4, cbErrBoom, &calls)
	cbWantState(t, b, StateClosed)
	if err := cbRun(b, 1, cbErrBoom, &calls); err != cbErrBoom {
		t.Errorf("5th call returned %v; want its own error", err)
	}
	cbWantState(t, b, StateOpen)
	err := cbRun(b, 1, nil, &calls)
	if !errors.Is(err, ErrOpen) {
		t.Errorf("call on open breaker = %v; want ErrOpen", err)
	}
	if calls != 5 {
		t.Errorf("fn ran %d times; want 5", calls)
	}
	if got, want := rec.transitions(), "[llm:closed->open]"; got != want {
		t.Errorf("transitions = %s; want %s", got, want)
	}
}

// CB2: one success resets the consecutive failures.
func TestBreakerSuccessResetsConsecutiveFailures(t *testing.T) {
	b, _, _ := cbNew(t, BreakerSettings{})
	calls := 0
	cbRun(b, 4, cbErrBoom, &calls)
	cbRun(b, 1, nil, &calls)
	cbRun(b, 4, cbErrBoom, &calls)
	cbWantState(t, b, StateClosed)
	if c := b.Counts(); c.ConsecutiveFailures != 4 || c.TotalFailures != 8 || c.TotalSuccesses != 1 {
		t.Errorf("Counts() = %+v; want 4 consecutive, 8 total failures, 1 success", c)
	}
}

// CB3: still open at T−1ms; a lazy half-open probe just after T.
func TestBreakerOpenTimeoutIsLazy(t *testing.T) {
	b, clock, rec := cbNew(t, BreakerSettings{OpenTimeout: 30 * time.Second})
	calls := 0
	cbRun(b, 5, cbErrBoom, &calls)
	clock.Advance(30*time.Second - time.Millisecond)
	if err := cbRun(b, 1, nil, &calls); !errors.Is(err, ErrOpen) || calls != 5 {
		t.Errorf("at T−1ms: err %v, fn calls %d; want ErrOpen, 5", err, calls)
	}
	cbWantState(t, b, StateOpen)
	clock.Advance(time.Millisecond)
	cbWantState(t, b, StateOpen) // exactly T: not yet
	clock.Advance(time.Nanosecond)
	cbWantState(t, b, StateHalfOpen)
	if err := cbRun(b, 1, nil, &calls); err != nil || calls != 6 {
		t.Errorf("at T+1ns: err %v, fn calls %d; want a probe (nil, 6)", err, calls)
	}
	if got, want := rec.transitions(), "[llm:closed->open llm:open->half_open]"; got != want {
		t.Errorf("transitions = %s; want %s", got, want)
	}
}

// cbOpenThenHalfOpen drives b (default thresholds) into half-open.
func cbOpenThenHalfOpen(t *testing.T, b *Breaker, clock *rlFakeClock) {
	t.Helper()
	calls := 0
	cbRun(b, 5, cbErrBoom, &calls)
	clock.Advance(time.Minute + time.Nanosecond)
	cbWantState(t, b, StateHalfOpen)
}

// CB4: half-open admits exactly P probes in total until a verdict, also
// against many concurrent callers.
func TestBreakerHalfOpenProbeBudget(t *testing.T) {
	b, clock, _ := cbNew(t, BreakerSettings{SuccessThreshold: 3})
	cbOpenThenHalfOpen(t, b, clock)
	var admitted atomic.Int32
	var dones sync.Map
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			done, err := b.Allow()
			switch {
			case err == nil:
				admitted.Add(1)
				dones.Store(i, done)
			case !errors.Is(err, ErrTooManyRequests):
				t.Errorf("extra half-open caller got %v; want ErrTooManyRequests", err)
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 3 {
		t.Fatalf("admitted %d probes; want 3", got)
	}
	n := 0
	dones.Range(func(_, v any) bool {
		n++
		v.(func(error))(nil)
		if n < 3 {
			if _, err := b.Allow(); !errors.Is(err, ErrTooManyRequests) {
				t.Errorf("after %d successful probes, Allow = %v; want ErrTooManyRequests (budget is total)", n, err)
			}
		}
		return true
	})
	cbWantState(t, b, StateClosed)
}

// CB5: the first half-open failure reopens with a fresh timeout; P
// consecutive successes close.
func TestBreakerHalfOpenVerdicts(t *testing.T) {
	b, clock, rec := cbNew(t, BreakerSettings{})
	cbOpenThenHalfOpen(t, b, clock)
	done1, err1 := b.Allow()
	done2, err2 := b.Allow()
	if err1 != nil || err2 != nil {
		t.Fatalf("two probes: %v, %v", err1, err2)
	}
	done1(nil)
	clock.Advance(5 * time.Second)
	done2(cbErrBoom)
	cbWantState(t, b, StateOpen)
	if got := b.RemainingOpen(); got != time.Minute {
		t.Errorf("RemainingOpen after half-open failure = %v; want a fresh 1m", got)
	}
	clock.Advance(time.Minute + time.Nanosecond)
	calls := 0
	cbRun(b, 2, nil, &calls)
	cbWantState(t, b, StateClosed)
	want := "[llm:closed->open llm:open->half_open llm:half_open->open llm:open->half_open llm:half_open->closed]"
	if got := rec.transitions(); got != want {
		t.Errorf("transitions = %s; want %s", got, want)
	}
}

// CB6: counts are zeroed on every transition and on each closed-interval
// reset (window mode).
func TestBreakerCountsZeroedOnTransitions(t *testing.T) {
	b, clock, _ := cbNew(t, BreakerSettings{})
	calls := 0
	cbRun(b, 1, nil, &calls)
	cbRun(b, 5, cbErrBoom, &calls)
	if c := b.Counts(); c != (Counts{}) {
		t.Errorf("Counts after closed→open = %+v; want zero", c)
	}
	cbRun(b, 1, nil, &calls) // rejected: not a request
	clock.Advance(time.Minute + time.Nanosecond)
	if c := b.Counts(); c != (Counts{}) {
		t.Errorf("Counts after open→half-open = %+v; want zero", c)
	}
	cbRun(b, 2, nil, &calls)
	if c := b.Counts(); c != (Counts{}) {
		t.Errorf("Counts after half-open→closed = %+v; want zero", c)
	}

	w, clock, rec := cbNew(t, BreakerSettings{Window: 10 * time.Second, FailureThreshold: 100})
	cbRun(w, 3, cbErrBoom, &calls)
	if c := w.Counts(); c.TotalFailures != 3 {
		t.Fatalf("Counts = %+v; want 3 failures", c)
	}
	clock.Advance(10 * time.Second)
	if c := w.Counts(); c != (Counts{}) {
		t.Errorf("Counts after the closed interval = %+v; want zero", c)
	}
	if got := rec.transitions(); got != "[]" {
		t.Errorf("interval reset reported transitions %s; want none", got)
	}
}

// CB7: results of calls admitted before a transition change nothing.
func TestBreakerGenerations(t *testing.T) {
	b, clock, _ := cbNew(t, BreakerSettings{})
	oldSuccess, _ := b.Allow()
	oldFailure, _ := b.Allow()
	calls := 0
	cbRun(b, 5, cbErrBoom, &calls) // opens
	oldSuccess(nil)
	oldFailure(cbErrBoom)
	if c := b.Counts(); c != (Counts{}) {
		t.Errorf("Counts after stale results = %+v; want zero", c)
	}
	clock.Advance(time.Minute + time.Nanosecond)
	probe, err := b.Allow()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	staleAfterHalfOpen, _ := b.Allow()
	probe(cbErrBoom) // reopens
	staleAfterHalfOpen(nil)
	cbWantState(t, b, StateOpen)
	if c := b.Counts(); c != (Counts{}) {
		t.Errorf("Counts after stale half-open result = %+v; want zero", c)
	}
}

// cbExcludedErr is a 4xx-like error that excludes itself.
type cbExcludedErr struct{}

func (cbExcludedErr) Error() string  { return "status 404" }
func (cbExcludedErr) Excluded() bool { return true }

// CB8, TO3: excluded outcomes are neither success nor failure; a half-open
// exclusion frees its probe slot; our own timeout is a failure.
func TestBreakerExclusions(t *testing.T) {
	deadlineCtx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	excluded := []error{
		context.Canceled,
		deadlineCtx.Err(), // the caller's deadline
		fmt.Errorf("llm: %w", context.DeadlineExceeded),
		&FullError{Name: "llm", Reason: "queue_full"},
		fmt.Errorf("ip: %w", ErrRateLimited),
		fmt.Errorf("wrapped: %w", cbExcludedErr{}),
	}
	b, clock, _ := cbNew(t, BreakerSettings{})
	calls := 0
	cbRun(b, 4, cbErrBoom, &calls)
	for _, err := range excluded {
		for range 3 {
			if got := b.Execute(func() error { return err }); got != err {
				t.Errorf("Execute returned %v; want %v", got, err)
			}
		}
	}
	cbWantState(t, b, StateClosed)
	if c := b.Counts(); c.TotalExclusions != uint32(3*len(excluded)) || c.ConsecutiveFailures != 4 || c.TotalSuccesses != 0 {
		t.Errorf("Counts = %+v; want %d exclusions, 4 consecutive failures, 0 successes", c, 3*len(excluded))
	}
	if err := b.Execute(func() error { return fmt.Errorf("tool: %w", ErrTimeout) }); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Execute = %v; want ErrTimeout", err)
	}
	cbWantState(t, b, StateOpen) // ErrTimeout was the 5th failure

	clock.Advance(time.Minute + time.Nanosecond)
	for i := range 10 { // excluded probes free their slot every time
		if err := b.Execute(func() error { return context.Canceled }); err != context.Canceled {
			t.Fatalf("excluded probe %d: %v; want context.Canceled (slot freed)", i, err)
		}
	}
	cbWantState(t, b, StateHalfOpen)
}

// CB9: a panic is a failure, frees the slot and propagates.
func TestBreakerPanicIsFailure(t *testing.T) {
	b, clock, _ := cbNew(t, BreakerSettings{FailureThreshold: 1})
	cbPanics := func() (p any) {
		defer func() { p = recover() }()
		b.Execute(func() error { panic("kaboom") })
		return nil
	}
	if p := cbPanics(); p != "kaboom" {
		t.Errorf("recovered %v; want the original panic", p)
	}
	cbWantState(t, b, StateOpen)
	clock.Advance(time.Minute + time.Nanosecond)
	if p := cbPanics(); p != "kaboom" {
		t.Errorf("recovered %v; want the original panic", p)
	}
	cbWantState(t, b, StateOpen) // the panicking probe reopened it
}

// CB10: one callback per real transition; the callback may use the breaker.
func TestBreakerCallbackReentrant(t *testing.T) {
	var b *Breaker
	clock := &rlFakeClock{t: rlT0}
	var seen []string
	b = NewBreaker(BreakerSettings{
		Name: "llm", FailureThreshold: 1, Now: clock.Now,
		OnStateChange: func(name string, from, to BreakerState) {
			if from == to {
				t.Errorf("callback with from == to == %v", from)
			}
			seen = append(seen, fmt.Sprintf("%v->%v now %v %+v", from, to, b.State(), b.Counts()))
		},
	})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		calls := 0
		cbRun(b, 1, cbErrBoom, &calls)
		cbRun(b, 3, nil, &calls) // rejected: no transitions
		clock.Advance(time.Minute + time.Nanosecond)
		cbRun(b, 2, nil, &calls)
	}()
	select {
	case <-finished:
	case <-time.After(time.Second):
		t.Fatalf("breaker deadlocked with a re-entrant OnStateChange")
	}
	want := fmt.Sprint([]string{
		"closed->open now open {Requests:0 TotalSuccesses:0 TotalFailures:0 TotalExclusions:0 ConsecutiveSuccesses:0 ConsecutiveFailures:0}",
		// the probe that found the timeout expired is admitted in the same critical section
		"open->half_open now half_open {Requests:1 TotalSuccesses:0 TotalFailures:0 TotalExclusions:0 ConsecutiveSuccesses:0 ConsecutiveFailures:0}",
		"half_open->closed now closed {Requests:0 TotalSuccesses:0 TotalFailures:0 TotalExclusions:0 ConsecutiveSuccesses:0 ConsecutiveFailures:0}",
	})
	if got := fmt.Sprint(seen); got != want {
		t.Errorf("callbacks:\n got %s\nwant %s", got, want)
	}
}

// CB10: a callback that itself causes a transition (via State() after the
// open timeout passed) gets it delivered after it returns, in order.
func TestBreakerCallbackCausingTransition(t *testing.T) {
	var b *Breaker
	clock := &rlFakeClock{t: rlT0}
	var seen []string
	b = NewBreaker(BreakerSettings{
		FailureThreshold: 1, OpenTimeout: time.Second, Now: clock.Now,
		OnStateChange: func(_ string, from, to BreakerState) {
			seen = append(seen, fmt.Sprintf("%v->%v", from, to))
			if to == StateOpen {
				clock.Advance(2 * time.Second)
				b.State() // open → half-open, queued
			}
		},
	})
	calls := 0
	cbRun(b, 1, cbErrBoom, &calls)
	if got, want := fmt.Sprint(seen), "[closed->open open->half_open]"; got != want {
		t.Errorf("callbacks = %s; want %s", got, want)
	}
}

// CB11: under 10 goroutines × 10k mixed calls the counts stay consistent.
func TestBreakerParallelCounts(t *testing.T) {
	b := NewBreaker(BreakerSettings{FailureThreshold: 1 << 30})
	outcomes := []error{nil, cbErrBoom, context.Canceled, nil, ErrTimeout}
	const goroutines, perG = 10, 10_000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			c := b.Counts()
			done := c.TotalSuccesses + c.TotalFailures + c.TotalExclusions
			if done > c.Requests || c.Requests-done > goroutines || c.Requests > goroutines*perG {
				t.Errorf("inconsistent Counts %+v", c)
				return
			}
		}
	})
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				err := outcomes[(g+i)%len(outcomes)]
				if i%2 == 0 {
					b.Execute(func() error { return err })
					continue
				}
				done, aerr := b.Allow()
				if aerr != nil {
					t.Errorf("Allow on a never-tripping breaker: %v", aerr)
					return
				}
				done(err)
				done(cbErrBoom) // single-use: ignored
			}
		})
	}
	wg.Wait()
	close(stop)
	watcher.Wait()
	c := b.Counts()
	want := Counts{Requests: 100_000, TotalSuccesses: 40_000, TotalFailures: 40_000, TotalExclusions: 20_000}
	c.ConsecutiveFailures, c.ConsecutiveSuccesses = 0, 0
	if c != want {
		t.Errorf("final Counts = %+v; want %+v", c, want)
	}
}

// CB11 with transitions: the same load on a tripping breaker with a moving
// clock stays race-free and never yields a torn state.
func TestBreakerParallelWithTransitions(t *testing.T) {
	clock := &rlFakeClock{t: rlT0}
	var transitions atomic.Int64
	b := NewBreaker(BreakerSettings{
		FailureThreshold: 3, OpenTimeout: time.Millisecond, Now: clock.Now,
		OnStateChange: func(string, BreakerState, BreakerState) { transitions.Add(1) },
	})
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			for i := range 10_000 {
				if i%100 == 0 {
					clock.Advance(time.Millisecond)
				}
				err := error(nil)
				if (g+i)%4 != 0 { // three failures in four: trips even without interleaving
					err = cbErrBoom
				}
				b.Execute(func() error { return err })
				if c := b.Counts(); c.TotalSuccesses+c.TotalFailures+c.TotalExclusions > c.Requests {
					t.Errorf("Counts %+v: more outcomes than requests", c)
					return
				}
			}
		})
	}
	wg.Wait()
	if transitions.Load() == 0 {
		t.Errorf("no transitions happened; the test proves nothing")
	}
}

// CB12: rolling window: old failures expire; too few calls never trip.
func TestBreakerRollingWindow(t *testing.T) {
	b, clock, _ := cbNew(t, BreakerSettings{FailureThreshold: 3, Window: 10 * time.Second})
	calls := 0
	for range 6 { // failures 6s apart: never 3 within 10s
		cbRun(b, 1, cbErrBoom, &calls)
		clock.Advance(6 * time.Second)
	}
	cbWantState(t, b, StateClosed)
	cbRun(b, 1, cbErrBoom, &calls)
	clock.Advance(4 * time.Second)
	cbRun(b, 1, nil, &calls) // not consecutive, still counts in window mode
	cbRun(b, 1, cbErrBoom, &calls)
	clock.Advance(5 * time.Second)
	cbRun(b, 1, cbErrBoom, &calls) // 3 failures within 9s
	cbWantState(t, b, StateOpen)

	m, _, _ := cbNew(t, BreakerSettings{FailureThreshold: 3, Window: 10 * time.Second, MinRequests: 10})
	cbRun(m, 9, cbErrBoom, &calls)
	cbWantState(t, m, StateClosed) // 100 % failure but only 9 calls
	cbRun(m, 1, cbErrBoom, &calls)
	cbWantState(t, m, StateOpen)

	c, _, _ := cbNew(t, BreakerSettings{FailureThreshold: 2, MinRequests: 4})
	cbRun(c, 3, cbErrBoom, &calls)
	cbWantState(t, c, StateClosed)
	cbRun(c, 1, cbErrBoom, &calls)
	cbWantState(t, c, StateOpen)
}

// CB13, TO1: a hung probe wrapped in a timeout ends as a failure and reopens.
func TestBreakerHungProbeTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(BreakerSettings{FailureThreshold: 1, OpenTimeout: 10 * time.Second})
		b.Execute(func() error { return cbErrBoom })
		unblock := make(chan struct{})
		defer close(unblock)
		<-time.After(10*time.Second + time.Nanosecond)
		start := time.Now()
		err := b.Execute(func() error {
			_, err := withTimeout(context.Background(), 2*time.Second, func(context.Context) (int, error) {
				<-unblock // ignores its context
				return 0, nil
			})
			return err
		})
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("hung probe = %v; want ErrTimeout", err)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("hung probe ended after %v; want 2s", got)
		}
		if got := b.State(); got != StateOpen {
			t.Errorf("State after timed-out probe = %v; want open", got)
		}
	})
}

// CB14: ErrOpen is a sentinel and the error carries the remaining open time.
func TestBreakerOpenErrorRemaining(t *testing.T) {
	b, clock, _ := cbNew(t, BreakerSettings{Name: "anthropic", FailureThreshold: 1, OpenTimeout: 30 * time.Second})
	calls := 0
	cbRun(b, 1, cbErrBoom, &calls)
	clock.Advance(12 * time.Second)
	_, err := b.Allow()
	var oe *OpenError
	if !errors.Is(err, ErrOpen) || !errors.As(err, &oe) {
		t.Fatalf("Allow on open breaker = %v; want *OpenError matching ErrOpen", err)
	}
	if oe.Remaining != 18*time.Second || oe.Name != "anthropic" {
		t.Errorf("OpenError = %+v; want anthropic with 18s remaining", *oe)
	}
	if got := b.RemainingOpen(); got != 18*time.Second {
		t.Errorf("RemainingOpen() = %v; want 18s", got)
	}
	if got := rlRetryAfterSeconds(oe.Remaining, 0); got != 18 {
		t.Errorf("Retry-After = %d; want 18", got)
	}
}

// CB15: force-open rejects everything without transitions; disable admits
// everything and records nothing.
func TestBreakerForceOpenAndDisable(t *testing.T) {
	b, _, rec := cbNew(t, BreakerSettings{FailureThreshold: 1})
	b.ForceOpen(true)
	calls := 0
	if err := cbRun(b, 3, nil, &calls); !errors.Is(err, ErrOpen) || calls != 0 {
		t.Errorf("forced open: err %v, fn calls %d; want ErrOpen, 0", err, calls)
	}
	cbWantState(t, b, StateOpen)
	b.ForceOpen(false)
	cbWantState(t, b, StateClosed)

	b.Disable(true)
	if err := cbRun(b, 10, cbErrBoom, &calls); err != cbErrBoom || calls != 10 {
		t.Errorf("disabled: err %v, fn calls %d; want boom, 10", err, calls)
	}
	if c := b.Counts(); c != (Counts{}) {
		t.Errorf("disabled: Counts = %+v; want zero", c)
	}
	cbWantState(t, b, StateClosed)
	b.Disable(false)
	cbRun(b, 1, cbErrBoom, &calls)
	cbWantState(t, b, StateOpen)
	if got, want := rec.transitions(), "[llm:closed->open]"; got != want {
		t.Errorf("transitions = %s; want %s (none from force/disable)", got, want)
	}
}

// TestBreakerStateString pins the metric label values.
func TestBreakerStateString(t *testing.T) {
	for s, want := range map[BreakerState]string{StateClosed: "closed", StateHalfOpen: "half_open", StateOpen: "open"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q; want %q", int(s), got, want)
		}
	}
}

func BenchmarkBreakerAllow(b *testing.B) {
	br := NewBreaker(BreakerSettings{})
	b.ReportAllocs()
	for b.Loop() {
		done, err := br.Allow()
		if err != nil {
			b.Fatal(err)
		}
		done(nil)
	}
}

func BenchmarkBreakerExecute(b *testing.B) {
	br := NewBreaker(BreakerSettings{})
	fn := func() error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		br.Execute(fn)
	}
}

// BenchmarkBreakerAdmission is the request path's form: AllowTicket + Done.
func BenchmarkBreakerAdmission(b *testing.B) {
	br := NewBreaker(BreakerSettings{})
	b.ReportAllocs()
	for b.Loop() {
		tk, err := br.AllowTicket()
		if err != nil {
			b.Fatal(err)
		}
		br.Done(tk, nil)
	}
}

func TestBreakerTicketsFollowGenerations(t *testing.T) {
	clk := newFakeClock()
	br := NewBreaker(BreakerSettings{FailureThreshold: 2, OpenTimeout: time.Minute, Now: clk.Now})
	old, err := br.AllowTicket()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		tk, _ := br.AllowTicket()
		br.Done(tk, errors.New("boom"))
	}
	if br.State() != StateOpen {
		t.Fatalf("state = %v; want open", br.State())
	}
	// A result from before the transition changes nothing (CB7).
	br.Done(old, nil)
	if c := br.Counts(); br.State() != StateOpen || c.TotalSuccesses != 0 {
		t.Errorf("stale ticket changed the breaker: %v %+v", br.State(), c)
	}
	if _, err := br.AllowTicket(); !errors.Is(err, ErrOpen) {
		t.Errorf("AllowTicket while open = %v; want ErrOpen", err)
	}
}
