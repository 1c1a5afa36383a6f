package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// bhWantFull checks that err is a *FullError with the given reason.
func bhWantFull(t *testing.T, err error, reason string) {
	t.Helper()
	var fe *FullError
	if !errors.Is(err, ErrFull) || !errors.As(err, &fe) || fe.Reason != reason {
		t.Errorf("err = %v; want *FullError %q matching ErrFull", err, reason)
	}
}

// BH1: N holders succeed; the (N+1)th fails at once with ErrFull.
func TestBulkheadCapacity(t *testing.T) {
	b := NewBulkhead("tools", 3, 10, 0) // maxWait 0: never wait
	var releases []func()
	for i := range 3 {
		rel, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatalf("holder %d: %v", i, err)
		}
		releases = append(releases, rel)
	}
	ran := false
	if rel, err := b.Acquire(context.Background()); err == nil {
		ran = true
		rel()
	} else {
		bhWantFull(t, err, "queue_full")
	}
	if ran || b.InFlight() != 3 {
		t.Errorf("4th caller admitted=%v, InFlight=%d; want refused, 3", ran, b.InFlight())
	}
	for _, rel := range releases {
		rel()
	}
	if b.InFlight() != 0 {
		t.Errorf("InFlight after releases = %d; want 0", b.InFlight())
	}
}

// BH2: a waiter gets a slot freed at w/2 at w/2, else ErrFull at w.
func TestBulkheadMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBulkhead("llm", 1, 5, 2*time.Second)
		rel, _ := b.Acquire(context.Background())
		time.AfterFunc(time.Second, rel)
		start := time.Now()
		rel2, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("waiter got the slot after %v; want 1s", got)
		}
		start = time.Now()
		_, err = b.Acquire(context.Background())
		bhWantFull(t, err, "queue_timeout")
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("queue timeout after %v; want 2s", got)
		}
		rel2()
	})
}

// BH2: the wait queue is bounded; one over it is refused at once.
func TestBulkheadQueueBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBulkhead("llm", 1, 2, time.Minute)
		rel, _ := b.Acquire(context.Background())
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				r, err := b.Acquire(context.Background())
				if err != nil {
					t.Errorf("queued waiter: %v", err)
					return
				}
				r()
			})
		}
		synctest.Wait()
		if got := b.Queued(); got != 2 {
			t.Errorf("Queued() = %d; want 2", got)
		}
		start := time.Now()
		_, err := b.Acquire(context.Background())
		bhWantFull(t, err, "queue_full")
		if got := time.Since(start); got != 0 {
			t.Errorf("over-queue refusal took %v; want immediate", got)
		}
		rel()
		wg.Wait()
		if b.InFlight() != 0 || b.Queued() != 0 {
			t.Errorf("InFlight=%d Queued=%d; want 0, 0", b.InFlight(), b.Queued())
		}
	})
}

// BH3: a cancelled waiter returns ctx.Err() promptly and holds no slot.
func TestBulkheadWaiterCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBulkhead("llm", 1, 5, time.Minute)
		rel, _ := b.Acquire(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(500*time.Millisecond, cancel)
		start := time.Now()
		_, err := b.Acquire(ctx)
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrFull) {
			t.Errorf("cancelled waiter = %v; want context.Canceled, not ErrFull", err)
		}
		if got := time.Since(start); got != 500*time.Millisecond {
			t.Errorf("cancelled waiter returned after %v; want 500ms", got)
		}
		if b.InFlight() != 1 || b.Queued() != 0 {
			t.Errorf("InFlight=%d Queued=%d; want 1, 0", b.InFlight(), b.Queued())
		}
		if _, err := b.Acquire(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Acquire with a done ctx = %v; want context.Canceled", err)
		}
		rel()
	})
}

// BH4, BH6: 10k mixed calls (errors, panics, cancels, queue timeouts) leak no
// slot, and concurrency never exceeds N. This one runs in real time, outside
// a synctest bubble: under -race, thousands of goroutines and timers in a
// bubble crash the race detector's runtime (a Go runtime problem seen in
// __tsan::SlotLock and StackDepot), and the test asserts only invariants.
func TestBulkheadNoLeakUnderChaos(t *testing.T) {
	const n = 8
	b := NewBulkhead("tools", n, 64, 30*time.Millisecond)
	var c bhChaos
	var wg sync.WaitGroup
	// 10k calls from 500 goroutines of 20 calls each (the race detector
	// supports at most 8128 live goroutines).
	for w := range 500 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 20 {
				c.call(b, rng)
			}
		})
	}
	wg.Wait()
	if b.InFlight() != 0 || b.Queued() != 0 {
		t.Errorf("after chaos InFlight=%d Queued=%d; want 0, 0", b.InFlight(), b.Queued())
	}
	if p := c.peak.Load(); p > n || p < 2 {
		t.Errorf("peak concurrency %d; want in [2, %d]", p, n)
	}
	if c.full.Load() == 0 || c.cancelled.Load() == 0 || c.panics.Load() == 0 {
		t.Errorf("admitted=%d full=%d cancelled=%d panics=%d; want every path exercised",
			c.admitted.Load(), c.full.Load(), c.cancelled.Load(), c.panics.Load())
	}
	if total := c.admitted.Load() + c.full.Load() + c.cancelled.Load(); total != 10_000 {
		t.Errorf("%d calls accounted for; want 10000", total)
	}
	var rels []func()
	for i := range n {
		rel, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatalf("slot %d after chaos: %v (leaked slot)", i, err)
		}
		rels = append(rels, rel)
	}
	for _, rel := range rels {
		rel()
	}
}

// bhChaos counts the outcomes of TestBulkheadNoLeakUnderChaos.
type bhChaos struct {
	inside, peak                      atomic.Int64
	admitted, full, cancelled, panics atomic.Int64
}

// call makes one random call: a random start, deadline and duration; the
// tool panics, fails or succeeds.
func (c *bhChaos) call(b *Bulkhead, rng *rand.Rand) {
	for range rng.IntN(20) {
		runtime.Gosched() // a random start
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+rng.IntN(40))*time.Millisecond)
	defer cancel()
	defer func() {
		if recover() != nil {
			c.panics.Add(1)
			c.admitted.Add(1)
		}
	}()
	err := bhCall(ctx, b, func() error {
		cur := c.inside.Add(1)
		defer c.inside.Add(-1)
		for {
			p := c.peak.Load()
			if cur <= p || c.peak.CompareAndSwap(p, cur) {
				break
			}
		}
		work := time.NewTimer(time.Duration(rng.IntN(5)) * time.Millisecond) // the tool's own work
		<-work.C
		switch rng.IntN(4) {
		case 0:
			panic("tool crashed")
		case 1:
			return errors.New("tool failed")
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrFull):
		c.full.Add(1)
	case errors.Is(err, context.DeadlineExceeded):
		c.cancelled.Add(1)
	default:
		c.admitted.Add(1)
	}
}

// bhCall runs fn inside a bulkhead slot the way production code must:
// defer release, so a panic cannot leak the slot.
func bhCall(ctx context.Context, b *Bulkhead, fn func() error) error {
	release, err := b.Acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	return fn()
}

// BH5: release is single-use; capacity never rises above N.
func TestBulkheadDoubleRelease(t *testing.T) {
	b := NewBulkhead("tools", 2, 0, 0)
	r1, _ := b.Acquire(context.Background())
	r2, _ := b.Acquire(context.Background())
	r1()
	r1()
	r1()
	if got := b.InFlight(); got != 1 {
		t.Errorf("InFlight after a triple release = %d; want 1", got)
	}
	r3, err := b.Acquire(context.Background())
	if err != nil {
		t.Fatalf("re-acquire: %v", err)
	}
	_, err = b.Acquire(context.Background())
	bhWantFull(t, err, "queue_full")
	r2()
	r3()
	r3()
	if got := b.InFlight(); got != 0 {
		t.Errorf("InFlight = %d; want 0", got)
	}
}

// BH6: M ≫ N goroutines never exceed N concurrent holders, and reach N.
func TestBulkheadPeakConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, m = 5, 500
		b := NewBulkhead("llm", n, m, time.Hour)
		var inside, peak atomic.Int64
		var wg sync.WaitGroup
		for range m {
			wg.Go(func() {
				err := bhCall(context.Background(), b, func() error {
					cur := inside.Add(1)
					for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
					}
					<-time.After(10 * time.Millisecond)
					inside.Add(-1)
					return nil
				})
				if err != nil {
					t.Errorf("call: %v", err)
				}
			})
		}
		wg.Wait()
		if got := peak.Load(); got != n {
			t.Errorf("peak concurrency = %d; want exactly %d", got, n)
		}
	})
}

// BH7: FIFO is not claimed (Go does not order blocked channel senders); what
// is promised is that every queued waiter is served once slots free up.
func TestBulkheadAllWaitersServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBulkhead("llm", 1, 20, time.Hour)
		rel, _ := b.Acquire(context.Background())
		var served sync.Map
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				if err := bhCall(context.Background(), b, func() error {
					served.Store(i, true)
					<-time.After(time.Millisecond)
					return nil
				}); err != nil {
					t.Errorf("waiter %d: %v", i, err)
				}
			})
		}
		synctest.Wait()
		rel()
		wg.Wait()
		for i := range 20 {
			if _, ok := served.Load(i); !ok {
				t.Errorf("waiter %d never served", i)
			}
		}
		if msg := fmt.Sprint(b.InFlight(), b.Queued()); msg != "0 0" {
			t.Errorf("InFlight, Queued = %s; want 0 0", msg)
		}
	})
}
