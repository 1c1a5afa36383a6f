package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// rtErr is an upstream error with a retry verdict and an optional Retry-After,
// shaped like *ProviderError.
type rtErr struct {
	retryable bool
	after     time.Duration
}

func (e rtErr) Error() string                 { return fmt.Sprintf("upstream error (retryable %v)", e.retryable) }
func (e rtErr) Retryable() bool               { return e.retryable }
func (e rtErr) RetryAfterHint() time.Duration { return e.after }

// rtSleeps is an injected Sleep that records delays and never blocks.
type rtSleeps []time.Duration

func (s *rtSleeps) sleep(ctx context.Context, d time.Duration) error {
	*s = append(*s, d)
	return ctx.Err()
}

// rtAlways returns fn failing with err every time and counting calls.
func rtAlways(err error, calls *int) func(context.Context, int) (int, error) {
	return func(_ context.Context, attempt int) (int, error) {
		*calls++
		if attempt != *calls {
			panic(fmt.Sprintf("attempt %d on call %d", attempt, *calls))
		}
		return 0, err
	}
}

// RT1 (RT/CO1): MaxAttempts counts the first call; delays follow min(base·factorᵏ, max)·(1±jitter).
func TestRetryDoBackoff(t *testing.T) {
	tests := []struct {
		name string
		p    RetryPolicy
		want string
	}{
		{"exponential capped", RetryPolicy{MaxAttempts: 6, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second},
			"[100ms 200ms 400ms 800ms 1s]"},
		{"factor 3", RetryPolicy{MaxAttempts: 4, BaseDelay: 10 * time.Millisecond, Factor: 3},
			"[10ms 30ms 90ms]"},
		{"jitter low end", RetryPolicy{MaxAttempts: 3, BaseDelay: 100 * time.Millisecond, Jitter: 0.5, Rand: func() float64 { return 0 }},
			"[50ms 100ms]"},
		{"jitter high end", RetryPolicy{MaxAttempts: 3, BaseDelay: 100 * time.Millisecond, Jitter: 0.5, Rand: func() float64 { return 0.999999 }},
			"[149.9999ms 299.9998ms]"},
		{"jitter clamped, never negative", RetryPolicy{MaxAttempts: 3, BaseDelay: 100 * time.Millisecond, Jitter: 5, Rand: func() float64 { return 0 }},
			"[0s 0s]"},
		{"one attempt", RetryPolicy{MaxAttempts: 1, BaseDelay: time.Second}, "[]"},
		{"zero policy is one attempt", RetryPolicy{}, "[]"},
		{"huge factor saturates", RetryPolicy{MaxAttempts: 3, BaseDelay: time.Hour, Factor: 1e300}, "[1h0m0s 2562047h47m16.854775807s]"},
	}
	for _, tc := range tests {
		var sleeps rtSleeps
		tc.p.Sleep = sleeps.sleep
		calls := 0
		_, attempts, err := retryDo(context.Background(), tc.p, nil, rtAlways(rtErr{retryable: true}, &calls))
		if got := fmt.Sprint([]time.Duration(sleeps)); got != tc.want {
			t.Errorf("%s: delays %s; want %s", tc.name, got, tc.want)
		}
		if wantAttempts := max(tc.p.MaxAttempts, 1); attempts != wantAttempts || calls != wantAttempts {
			t.Errorf("%s: attempts %d, calls %d; want %d", tc.name, attempts, calls, wantAttempts)
		}
		if !errors.As(err, new(rtErr)) {
			t.Errorf("%s: err %v; want the last upstream error", tc.name, err)
		}
	}
}

// RT1 (RT/CO1): a success stops retrying; the default Sleep is interrupted by ctx.
func TestRetryDoSuccessAndInterruptedSleep(t *testing.T) {
	var sleeps rtSleeps
	v, attempts, err := retryDo(context.Background(), RetryPolicy{MaxAttempts: 5, Sleep: sleeps.sleep}, nil,
		func(_ context.Context, attempt int) (string, error) {
			if attempt < 3 {
				return "", ErrTimeout
			}
			return "ok", nil
		})
	if v != "ok" || attempts != 3 || err != nil {
		t.Errorf("got %q, %d, %v; want ok, 3, nil", v, attempts, err)
	}
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		calls := 0
		_, attempts, err := retryDo(ctx, RetryPolicy{MaxAttempts: 5, BaseDelay: time.Second}, nil, rtAlways(ErrTimeout, &calls))
		if !errors.Is(err, context.Canceled) || attempts != 1 || time.Since(start) != 50*time.Millisecond {
			t.Errorf("cancel during backoff: %v, %d attempts after %v; want Canceled, 1, 50ms", err, attempts, time.Since(start))
		}
	})
}

// RT2 (RT/CO2): never retry rejections, caller context errors or final upstream errors.
func TestRetryDoNonRetryable(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
	}{
		{"breaker open", context.Background(), &OpenError{Name: "llm"}},
		{"half-open busy", context.Background(), ErrTooManyRequests},
		{"bulkhead full", context.Background(), &FullError{Name: "llm", Reason: "queue_full"}},
		{"rate limited", context.Background(), fmt.Errorf("x: %w", ErrRateLimited)},
		{"4xx", context.Background(), rtErr{retryable: false}},
		{"caller cancelled", context.Background(), context.Canceled},
		{"caller deadline", context.Background(), fmt.Errorf("llm: %w", context.DeadlineExceeded)},
		{"ctx already done", cancelled, rtErr{retryable: true}},
		{"plain error", context.Background(), errors.New("unknown")},
	}
	for _, tc := range tests {
		var sleeps rtSleeps
		calls := 0
		_, attempts, err := retryDo(tc.ctx, RetryPolicy{MaxAttempts: 5, Sleep: sleeps.sleep}, nil, rtAlways(tc.err, &calls))
		if attempts != 1 || calls != 1 || err != tc.err || len(sleeps) != 0 {
			t.Errorf("%s: %d attempts, err %v, %d sleeps; want 1 attempt, the error, no sleep", tc.name, attempts, err, len(sleeps))
		}
	}
	// A permissive predicate cannot override the fixed rules.
	calls := 0
	if _, attempts, _ := retryDo(context.Background(), RetryPolicy{MaxAttempts: 5, Sleep: new(rtSleeps).sleep},
		func(error) bool { return true }, rtAlways(ErrFull, &calls)); attempts != 1 {
		t.Errorf("ErrFull with retry-everything predicate: %d attempts; want 1", attempts)
	}
}

// RT2 (RT/CO2): an upstream Retry-After replaces the backoff; beyond the deadline,
// give up at once.
func TestRetryDoRetryAfterHint(t *testing.T) {
	var sleeps rtSleeps
	calls := 0
	_, attempts, _ := retryDo(context.Background(), RetryPolicy{MaxAttempts: 3, BaseDelay: 100 * time.Millisecond, Sleep: sleeps.sleep},
		nil, rtAlways(rtErr{retryable: true, after: 3 * time.Second}, &calls))
	if got := fmt.Sprint([]time.Duration(sleeps)); attempts != 3 || got != "[3s 3s]" {
		t.Errorf("Retry-After 3s: %d attempts, delays %s; want 3, [3s 3s]", attempts, got)
	}
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		calls := 0
		want := rtErr{retryable: true, after: 5 * time.Second}
		_, attempts, err := retryDo(ctx, RetryPolicy{MaxAttempts: 3}, nil, rtAlways(want, &calls))
		if attempts != 1 || err != want || time.Since(start) != 0 {
			t.Errorf("Retry-After past the deadline: %d attempts, %v after %v; want 1, the upstream error, at once", attempts, err, time.Since(start))
		}
	})
}

// RT2: retryableDefault retries ErrTimeout and Retryable() == true only.
func TestRetryableDefault(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{ErrTimeout, true},
		{fmt.Errorf("tool: %w", ErrTimeout), true},
		{rtErr{retryable: true}, true},
		{fmt.Errorf("wrapped: %w", rtErr{retryable: true}), true},
		{rtErr{retryable: false}, false},
		{errors.New("plain"), false},
		{&OpenError{}, false},
		{context.DeadlineExceeded, false},
	} {
		if got := retryableDefault(tc.err); got != tc.want {
			t.Errorf("retryableDefault(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
}

// CO3 (RT3): Retry(Breaker(Limiter(Bulkhead(Timeout(fn))))) with a threshold-3
// breaker and an always-failing fn: 7 allowed attempts run fn exactly 3 times
// and end in ErrOpen; each admitted attempt costs a token and a slot.
func TestCompositionRetryBreakerLimiterBulkheadTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := NewBreaker(BreakerSettings{Name: "llm", FailureThreshold: 3})
		lim := NewLimiter(0, 100) // no refill: tokens left count the attempts
		bh := NewBulkhead("llm", 2, 4, time.Second)
		fnCalls, slots := 0, 0
		attemptOnce := func(ctx context.Context, _ int) (string, error) {
			var out string
			err := br.Execute(func() error {
				if !lim.Allow() {
					return ErrRateLimited
				}
				release, err := bh.Acquire(ctx)
				if err != nil {
					return err
				}
				defer release()
				slots++
				out, err = withTimeout(ctx, time.Second, func(ctx context.Context) (string, error) {
					fnCalls++
					return "", rtErr{retryable: true}
				})
				return err
			})
			return out, err
		}
		_, attempts, err := retryDo(context.Background(),
			RetryPolicy{MaxAttempts: 7, BaseDelay: 10 * time.Millisecond}, nil, attemptOnce)
		if !errors.Is(err, ErrOpen) {
			t.Errorf("final error %v; want ErrOpen", err)
		}
		if fnCalls != 3 || attempts != 4 {
			t.Errorf("fn ran %d times in %d attempts; want 3 in 4 (the 4th rejected by the open breaker)", fnCalls, attempts)
		}
		if got := lim.Tokens(); got != 97 {
			t.Errorf("tokens left %v; want 97 (one per admitted attempt)", got)
		}
		if slots != 3 || bh.InFlight() != 0 {
			t.Errorf("slots taken %d, in flight %d; want 3, 0", slots, bh.InFlight())
		}
	})
}
