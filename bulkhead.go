package main

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// ErrFull is matched (errors.Is) by every bulkhead rejection; the concrete
// error is *FullError. The HTTP layer answers it with 503 "overloaded".
var ErrFull = errors.New("bulkhead full")

// FullError is a bulkhead rejection. Reason is "queue_full" (no slot and no
// room to wait) or "queue_timeout" (waited maxWait without getting a slot);
// it is the reason label of agent_bulkhead_rejected_total.
type FullError struct {
	Name   string
	Reason string
}

func (e *FullError) Error() string { return "bulkhead " + e.Name + ": " + e.Reason }

// Is makes errors.Is(err, ErrFull) true.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// Bulkhead limits concurrent calls to maxConcurrent, with at most maxQueued
// callers waiting up to maxWait for a slot. It is a buffered-channel
// semaphore: a slot is a value in the channel, so capacity can never exceed
// maxConcurrent. Waiters are not served in FIFO order (Go does not promise
// fairness among blocked channel senders). Safe for concurrent use.
type Bulkhead struct {
	name      string
	slots     chan struct{} // one value per call in flight
	queued    atomic.Int64
	maxQueued int64
	maxWait   time.Duration
}

// NewBulkhead returns a bulkhead admitting maxConcurrent calls at once
// (minimum 1). maxQueued ≤ 0 or maxWait ≤ 0 means callers never wait: a call
// finding every slot busy is rejected at once with reason "queue_full".
func NewBulkhead(name string, maxConcurrent, maxQueued int, maxWait time.Duration) *Bulkhead {
	if maxQueued < 0 || maxWait <= 0 {
		maxQueued = 0
	}
	return &Bulkhead{
		name:      name,
		slots:     make(chan struct{}, max(maxConcurrent, 1)),
		maxQueued: int64(maxQueued),
		maxWait:   maxWait,
	}
}

// Acquire takes a slot, waiting (within the queue bound) up to maxWait. It
// returns a release function to call exactly once when the call ends (use
// defer, so a panic cannot leak the slot); calling it again is a no-op. A
// rejection returns a *FullError; a ctx that ends first returns ctx.Err(). On
// any error no slot is held.
func (b *Bulkhead) Acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case b.slots <- struct{}{}:
		return b.releaser(), nil
	default:
	}
	if b.queued.Add(1) > b.maxQueued {
		b.queued.Add(-1)
		return nil, &FullError{Name: b.name, Reason: "queue_full"}
	}
	defer b.queued.Add(-1)
	timer := time.NewTimer(b.maxWait)
	defer timer.Stop()
	select {
	case b.slots <- struct{}{}:
		return b.releaser(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, &FullError{Name: b.name, Reason: "queue_timeout"}
	}
}

// releaser returns the single-use release for one acquired slot.
func (b *Bulkhead) releaser() func() {
	var released atomic.Bool
	return func() {
		if released.CompareAndSwap(false, true) {
			<-b.slots
		}
	}
}

// InFlight returns the number of slots held.
func (b *Bulkhead) InFlight() int { return len(b.slots) }

// Queued returns the number of callers waiting for a slot.
func (b *Bulkhead) Queued() int { return int(b.queued.Load()) }

// Name returns the bulkhead's label in metrics.
func (b *Bulkhead) Name() string { return b.name }
