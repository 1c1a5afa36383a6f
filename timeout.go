package main

import (
	"context"
	"errors"
	"time"
)

// rlTimeoutError is the type of ErrTimeout: a sentinel of its own (so the
// breaker can tell our timeout, a failure, from the caller's deadline, which
// is excluded) that still matches context.DeadlineExceeded.
type rlTimeoutError struct{}

func (rlTimeoutError) Error() string { return "operation timed out" }

// Is makes errors.Is(ErrTimeout, context.DeadlineExceeded) true.
func (rlTimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Timeout marks the error as a timeout for net.Error-style checks.
func (rlTimeoutError) Timeout() bool { return true }

// ErrTimeout is returned by withTimeout when its own limit, not the caller's
// context, ended the operation. errors.Is(ErrTimeout, context.DeadlineExceeded)
// is true; the breaker counts it as a failure, retry as retryable, and the HTTP
// layer answers 504 "upstream_timeout".
var ErrTimeout error = rlTimeoutError{}

// rlResult carries fn's outcome (or its panic) from withTimeout's goroutine.
type rlResult[T any] struct {
	v        T
	err      error
	panicked bool
	panicVal any
}

// withTimeout runs fn with a child context that ends after d and returns its
// result, or ErrTimeout as soon as d passes even if fn ignores its context
// (fn then finishes in the background and its late result is discarded; the
// result channel is buffered, so its goroutine still exits). A parent that is
// cancelled or whose deadline comes first wins: its ctx.Err() is returned.
// When fn returns an error because our limit cancelled it, the error is
// ErrTimeout. A panic in fn is re-raised in the caller if the caller is still
// waiting, and discarded with the result otherwise. d ≤ 0 means no timeout:
// fn runs in the caller's goroutine with ctx.
func withTimeout[T any](ctx context.Context, d time.Duration, fn func(context.Context) (T, error)) (T, error) {
	if d <= 0 {
		return fn(ctx)
	}
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	cctx, cancel := context.WithTimeoutCause(ctx, d, ErrTimeout)
	defer cancel()
	ch := make(chan rlResult[T], 1)
	go func() {
		var r rlResult[T]
		defer func() {
			if p := recover(); p != nil {
				r.panicked, r.panicVal = true, p
			}
			ch <- r
		}()
		r.v, r.err = fn(cctx)
	}()
	select {
	case r := <-ch:
		if r.panicked {
			panic(r.panicVal)
		}
		if r.err != nil && cctx.Err() != nil {
			if err := ctx.Err(); err != nil {
				return r.v, err
			}
			if errors.Is(context.Cause(cctx), ErrTimeout) {
				return r.v, ErrTimeout
			}
		}
		return r.v, r.err
	case <-cctx.Done():
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		return zero, ErrTimeout
	}
}
