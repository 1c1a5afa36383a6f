package main

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"time"
)

// RetryPolicy configures retryDo. Zero fields take the documented defaults.
type RetryPolicy struct {
	MaxAttempts int                                              // attempts including the first (default 1: no retry)
	BaseDelay   time.Duration                                    // delay before the 2nd attempt, before jitter
	MaxDelay    time.Duration                                    // cap on the delay before jitter (0: no cap)
	Factor      float64                                          // growth per attempt (default 2)
	Jitter      float64                                          // ± fraction of the delay, clamped to [0, 1]
	Rand        func() float64                                   // uniform in [0, 1) (default math/rand/v2.Float64)
	Sleep       func(ctx context.Context, d time.Duration) error // default: a timer interrupted by ctx
}

// retryDo calls fn until it succeeds, attempts run out, or an error is not
// worth retrying, and returns the last result, the number of attempts made and
// the last error. The delay before attempt k+2 is min(BaseDelay·Factorᵏ,
// MaxDelay)·(1 ± Jitter), never negative. An error carrying an upstream
// Retry-After (interface{ RetryAfterHint() time.Duration } with a positive
// value) replaces that delay. If the delay would end past ctx's deadline,
// retryDo gives up at once with the last error; if ctx ends during the delay
// it returns ctx.Err(). It never retries ErrOpen, ErrTooManyRequests, ErrFull,
// ErrRateLimited or the caller's own context errors; other errors are retried
// when retryable (nil: retryableDefault) says so.
func retryDo[T any](ctx context.Context, p RetryPolicy, retryable func(error) bool, fn func(ctx context.Context, attempt int) (T, error)) (T, int, error) {
	if retryable == nil {
		retryable = retryableDefault
	}
	sleep := p.Sleep
	if sleep == nil {
		sleep = rlSleep
	}
	maxAttempts := max(p.MaxAttempts, 1)
	for attempt := 1; ; attempt++ {
		v, err := fn(ctx, attempt)
		if err == nil || attempt >= maxAttempts || !rlShouldRetry(ctx, err, retryable) {
			return v, attempt, err
		}
		delay := p.delay(attempt - 1)
		var hinted interface{ RetryAfterHint() time.Duration }
		if errors.As(err, &hinted) && hinted.RetryAfterHint() > 0 {
			delay = hinted.RetryAfterHint()
		}
		if deadline, ok := ctx.Deadline(); ok && time.Now().Add(delay).After(deadline) {
			return v, attempt, err
		}
		if serr := sleep(ctx, delay); serr != nil {
			return v, attempt, serr
		}
	}
}

// delay returns the wait after the (k+1)-th failed attempt.
func (p RetryPolicy) delay(k int) time.Duration {
	factor := p.Factor
	if factor <= 0 {
		factor = 2
	}
	d := float64(p.BaseDelay) * math.Pow(factor, float64(k))
	if p.MaxDelay > 0 {
		d = min(d, float64(p.MaxDelay))
	}
	if j := min(max(p.Jitter, 0), 1); j > 0 {
		r := p.Rand
		if r == nil {
			r = rand.Float64
		}
		d *= 1 + j*(2*r()-1)
	}
	switch {
	case !(d > 0): // also NaN
		return 0
	case d >= float64(math.MaxInt64):
		return rlInfDuration
	}
	return time.Duration(d)
}

// rlShouldRetry applies the rules no predicate may override, then retryable.
func rlShouldRetry(ctx context.Context, err error, retryable func(error) bool) bool {
	if ctx.Err() != nil {
		return false
	}
	if errors.Is(err, ErrOpen) || errors.Is(err, ErrTooManyRequests) ||
		errors.Is(err, ErrFull) || errors.Is(err, ErrRateLimited) {
		return false
	}
	if !errors.Is(err, ErrTimeout) &&
		(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return false
	}
	return retryable(err)
}

// retryableDefault retries ErrTimeout and errors implementing
// interface{ Retryable() bool } that return true (e.g. *ProviderError for
// transport errors, 408, 429 and 5xx); nothing else.
func retryableDefault(err error) bool {
	if errors.Is(err, ErrTimeout) {
		return true
	}
	var r interface{ Retryable() bool }
	return errors.As(err, &r) && r.Retryable()
}

// rlSleep waits d or until ctx ends, whichever comes first.
func rlSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
