package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TO1: ErrTimeout is its own sentinel that still matches DeadlineExceeded.
func TestErrTimeoutIdentity(t *testing.T) {
	if !errors.Is(ErrTimeout, context.DeadlineExceeded) {
		t.Errorf("errors.Is(ErrTimeout, context.DeadlineExceeded) = false; want true")
	}
	if errors.Is(context.DeadlineExceeded, ErrTimeout) {
		t.Errorf("errors.Is(context.DeadlineExceeded, ErrTimeout) = true; want false")
	}
	if !errors.Is(fmt.Errorf("llm: %w", ErrTimeout), ErrTimeout) {
		t.Errorf("wrapped ErrTimeout not matched")
	}
	if cbDefaultExcluded(ErrTimeout) || !cbDefaultExcluded(context.DeadlineExceeded) {
		t.Errorf("default exclusion: ErrTimeout excluded=%v, DeadlineExceeded excluded=%v; want false, true",
			cbDefaultExcluded(ErrTimeout), cbDefaultExcluded(context.DeadlineExceeded))
	}
}

// TO1: a slow fn yields ErrTimeout at d, and fn's ctx is done at d.
func TestWithTimeoutExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Cooperative fn: returns when its ctx ends.
		start := time.Now()
		doneAt := make(chan time.Duration, 1)
		_, err := withTimeout(context.Background(), time.Second, func(ctx context.Context) (string, error) {
			<-ctx.Done()
			doneAt <- time.Since(start)
			return "", fmt.Errorf("upstream: %w", ctx.Err())
		})
		if err != ErrTimeout || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("cooperative fn past d: err = %v; want ErrTimeout", err)
		}
		if back, done := time.Since(start), <-doneAt; done != time.Second || back != time.Second {
			t.Errorf("fn ctx done at %v, caller back at %v; want 1s, 1s", done, back)
		}

		// Non-cooperative fn: the caller still gets ErrTimeout at d.
		unblock := make(chan struct{})
		start = time.Now()
		_, err = withTimeout(context.Background(), time.Second, func(context.Context) (int, error) {
			<-unblock
			return 42, nil
		})
		if err != ErrTimeout || time.Since(start) != time.Second {
			t.Errorf("non-cooperative fn: err %v after %v; want ErrTimeout after 1s", err, time.Since(start))
		}
		close(unblock)
	})
}

// TO2: a fast fn's result is returned and the child ctx is released.
func TestWithTimeoutFastResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var child context.Context
		start := time.Now()
		v, err := withTimeout(context.Background(), time.Second, func(ctx context.Context) (string, error) {
			child = ctx
			<-time.After(300 * time.Millisecond)
			return "reply", nil
		})
		if v != "reply" || err != nil || time.Since(start) != 300*time.Millisecond {
			t.Errorf("got %q, %v after %v; want reply, nil after 300ms", v, err, time.Since(start))
		}
		if !errors.Is(child.Err(), context.Canceled) {
			t.Errorf("child ctx after return: %v; want cancelled (timer released)", child.Err())
		}
		sentinel := errors.New("bad request")
		if _, err := withTimeout(context.Background(), time.Second, func(context.Context) (int, error) { return 0, sentinel }); err != sentinel {
			t.Errorf("fn error = %v; want it unchanged", err)
		}
		if v, err := withTimeout(context.Background(), 0, func(context.Context) (int, error) { return 7, nil }); v != 7 || err != nil {
			t.Errorf("d=0: %d, %v; want 7, nil (no timeout)", v, err)
		}
	})
}

// TO3: a parent cancel or an earlier parent deadline wins, and the breaker
// excludes it while counting ErrTimeout as a failure.
func TestWithTimeoutParentWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }

		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, err := withTimeout(ctx, time.Second, hang)
		if err != context.Canceled || time.Since(start) != 200*time.Millisecond {
			t.Errorf("parent cancel: %v after %v; want context.Canceled after 200ms", err, time.Since(start))
		}

		ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start = time.Now()
		_, err = withTimeout(ctx, time.Second, hang)
		if err != context.DeadlineExceeded || errors.Is(err, ErrTimeout) || time.Since(start) != 300*time.Millisecond {
			t.Errorf("parent deadline: %v after %v; want the parent's DeadlineExceeded after 300ms", err, time.Since(start))
		}

		b := NewBreaker(BreakerSettings{FailureThreshold: 2})
		b.Execute(func() error { _, err := withTimeout(ctx, time.Second, hang); return err })
		if c := b.Counts(); c.TotalExclusions != 1 || c.TotalFailures != 0 {
			t.Errorf("caller deadline: Counts %+v; want 1 exclusion", c)
		}
		b.Execute(func() error { _, err := withTimeout(context.Background(), time.Second, hang); return err })
		if c := b.Counts(); c.TotalFailures != 1 {
			t.Errorf("our timeout: Counts %+v; want 1 failure", c)
		}
	})
}

// TO4: a non-cooperative fn leaks no goroutine once it finishes.
func TestWithTimeoutNoGoroutineLeak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		unblock := make(chan struct{})
		var exited atomic.Int64
		for range 100 {
			withTimeout(context.Background(), time.Millisecond, func(context.Context) (int, error) {
				defer exited.Add(1)
				<-unblock
				return 1, nil
			})
		}
		if got := exited.Load(); got != 0 {
			t.Fatalf("%d fns finished before they were unblocked", got)
		}
		close(unblock)
		synctest.Wait() // every fn goroutine has sent into its buffered channel and exited
		if got := exited.Load(); got != 100 {
			t.Errorf("%d of 100 abandoned fns finished; want all (a blocked result send would leak them)", got)
		}
		// synctest.Test itself also fails if any goroutine of the bubble is
		// left blocked, e.g. on an unbuffered result send: the bubble's
		// goroutine count returns to its baseline (TO4) or the test fails.
	})
}

// TestWithTimeoutPanicPropagates: a panic in fn reaches the waiting caller.
func TestWithTimeoutPanicPropagates(t *testing.T) {
	defer func() {
		if p := recover(); p != "tool bug" {
			t.Errorf("recovered %v; want the fn's panic", p)
		}
	}()
	withTimeout(context.Background(), time.Hour, func(context.Context) (int, error) { panic("tool bug") })
	t.Errorf("withTimeout returned; want a panic")
}

// TO5: waiting for a limiter token or a bulkhead slot counts against the
// operation's deadline; the inner timeout applies per attempt, the outer one
// bounds the total.
func TestDeadlineCoversQueueing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()

		bh := NewBulkhead("llm", 1, 1, time.Minute)
		holder, _ := bh.Acquire(context.Background())
		time.AfterFunc(600*time.Millisecond, holder)
		release, err := bh.Acquire(ctx)
		if err != nil {
			t.Fatalf("slot: %v", err)
		}
		_, err = withTimeout(ctx, 500*time.Millisecond, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		release()
		if err != context.DeadlineExceeded || time.Since(start) != time.Second {
			t.Errorf("after 600ms queueing: %v at %v; want the outer DeadlineExceeded at 1s", err, time.Since(start))
		}

		lim := NewLimiter(1, 1)
		lim.Allow()
		ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel2()
		if err := lim.Wait(ctx2); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("limiter wait longer than the deadline: %v; want DeadlineExceeded", err)
		}

		ctx3, cancel3 := context.WithTimeout(context.Background(), time.Second)
		defer cancel3()
		start = time.Now()
		var starts []time.Duration
		_, attempts, err := retryDo(ctx3, RetryPolicy{MaxAttempts: 10}, nil, func(ctx context.Context, _ int) (int, error) {
			starts = append(starts, time.Since(start))
			return withTimeout(ctx, 300*time.Millisecond, func(ctx context.Context) (int, error) {
				<-ctx.Done()
				return 0, ctx.Err()
			})
		})
		if got := time.Since(start); got != time.Second || attempts != 4 || err != context.DeadlineExceeded {
			t.Errorf("retry of 300ms attempts in 1s: %d attempts, %v, after %v; want 4, DeadlineExceeded, 1s", attempts, err, got)
		}
		if want := "[0s 300ms 600ms 900ms]"; fmt.Sprint(starts) != want {
			t.Errorf("attempt starts = %v; want %s", starts, want)
		}
	})
}
