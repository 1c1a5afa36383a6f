package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"sync"
	"time"
)

// Sizes and timing of the file backend.
const (
	// auditQueueBatches bounds the Appends waiting for the writer; when the
	// writer is stuck (a hung disk) further Appends wait for their ctx instead
	// of growing memory.
	auditQueueBatches = 1024
	// auditMaxGroupBytes: the writer stops draining the queue once a group
	// reaches this size, so one write is below auditMaxGroupBytes +
	// auditMaxRecordBytes and a write torn by a crash is recognizable.
	auditMaxGroupBytes = 1 << 20
	// auditTailWindow is how much of the file's end is read back and checked
	// on open: more than the largest torn write plus one whole record.
	auditTailWindow = 4 << 20
	// auditRetryInterval: while unhealthy, the writer retries this often by
	// itself, so that readiness recovers even though no traffic (and so no
	// Append) reaches a not-ready pod. Short enough to come back within a
	// probe period or two, long enough not to hammer a failing disk.
	auditRetryInterval = 5 * time.Second
	// auditDefaultIndex is the query window when maxIndex <= 0.
	auditDefaultIndex = 10000
)

// auditFile is what the writer needs of the open file; *os.File implements
// it and tests inject failures (ENOSPC, EROFS, short writes) through it.
type auditFile interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// auditMaxWait bounds how long FileAudit.Append waits for its write when
// the caller's context sets no deadline.
const auditMaxWait = 10 * time.Second

// FileAudit is the file backend: hash-chained JSON Lines (format in
// audit_chain.go) appended to one file.
//
// Group commit: one writer goroutine owns the file. Append encodes its events,
// queues them as one batch and waits; the writer takes every queued batch,
// assigns seq/prev_hash/hash, writes them with one write and, when fsync is
// on, one fsync, then answers all of them. Concurrent Appends thus share an
// fsync, and one Append's events are contiguous and in order.
//
// Fail closed: when a write or fsync fails, the Appends of that group get an
// error wrapping ErrAuditUnavailable, Healthy turns non-nil, OnWriteError is
// called, and the file is truncated back to the end of the last good record
// (if that truncate fails too, it is retried before the next write; nothing is
// appended after a partial line). The writer retries every
// auditRetryInterval by itself; the first successful write after a failure
// starts with a security event "audit_resumed" recording the outage, then
// Healthy is nil again.
//
// Query answers from an in-memory index of the most recent maxIndex records
// (including those read back on open); the full history is in the file.
// Safe for concurrent use.
type FileAudit struct {
	path       string
	fsync      bool
	hooks      AuditHooks
	now        func() time.Time
	file       auditFile
	queue      chan *auditBatch
	writerDone chan struct{}
	repaired   string

	closeMu  sync.Mutex // guards closed; Append holds it only to register as a sender
	closed   bool
	senders  sync.WaitGroup // Appends between the closed check and their queue send
	closeOne sync.Once
	closeErr error // set by the writer before writerDone closes

	mu     sync.Mutex // guards index and health
	index  auditRing
	health error

	// Owned by the writer goroutine.
	seq         uint64 // last record in the file
	hash        string // its hash
	offset      int64  // end of the last good record
	dirty       bool   // bytes after offset may exist (a truncate failed)
	failures    int    // failed writes since the last success
	failedSince time.Time
	lastErr     error
	buf         []byte
	group       []*auditBatch
}

// auditBatch is one Append's events on their way to the writer.
type auditBatch struct {
	events []AuditEvent
	bodies [][]byte
	size   int
	done   chan error // buffered: the writer never waits for a gone Append
}

// auditStart runs the writer for an opened file whose end is t.
func auditStart(path string, file auditFile, t auditTail, fsync bool, maxIndex int, hooks AuditHooks, now func() time.Time) *FileAudit {
	if maxIndex <= 0 {
		maxIndex = auditDefaultIndex
	}
	if now == nil {
		now = time.Now
	}
	a := &FileAudit{
		path: path, fsync: fsync, hooks: hooks, now: now, file: file,
		queue:      make(chan *auditBatch, auditQueueBatches),
		writerDone: make(chan struct{}),
		index:      auditRing{max: maxIndex},
		seq:        t.seq, hash: t.hash, offset: t.size,
	}
	for i := range t.recent {
		a.index.push(&t.recent[i])
	}
	go a.run()
	return a
}

// RepairedTail describes the torn last record that open removed, for the
// log; "" when there was none.
func (a *FileAudit) RepairedTail() string { return a.repaired }

// Append queues events as one batch and waits until the writer has written
// (and, with fsync, synced) them. It waits at most until ctx is done: a ctx
// already done writes nothing; one that ends while the queue is full writes
// nothing; one that ends after the batch was queued returns an error saying
// the outcome is unknown (the batch is still written). A ctx without a
// deadline waits at most auditMaxWait, so a stuck disk fails the request
// instead of holding it. To audit a request whose client went away, pass
// context.WithoutCancel(r.Context()).
func (a *FileAudit) Append(ctx context.Context, events ...AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit append: %w: %w", ErrAuditUnavailable, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, auditMaxWait)
		defer cancel()
	}
	b := &auditBatch{events: make([]AuditEvent, len(events)), bodies: make([][]byte, len(events)), done: make(chan error, 1)}
	for i, ev := range events {
		n, err := auditNormalize(ev, a.now)
		// The writer reads the event after an Append that stopped waiting
		// (ctx done) has returned: it must not share the caller's map.
		n.Metadata = maps.Clone(n.Metadata)
		if err == nil {
			b.bodies[i], err = auditEncodeBody(n)
		}
		if err != nil {
			return fmt.Errorf("audit append: %w: %w", ErrAuditUnavailable, err)
		}
		b.events[i] = n
		b.size += len(b.bodies[i]) + 180 // + seq, prev_hash, hash
	}
	if b.size > auditMaxRecordBytes {
		return fmt.Errorf("audit append: %w: batch of %d bytes exceeds %d: %w", ErrAuditUnavailable, b.size, auditMaxRecordBytes, auditErrInvalidEvent)
	}
	a.closeMu.Lock()
	if a.closed {
		a.closeMu.Unlock()
		return fmt.Errorf("audit append: %w: %w", ErrAuditClosed, ErrAuditUnavailable)
	}
	a.senders.Add(1)
	a.closeMu.Unlock()
	err := a.enqueue(ctx, b)
	a.senders.Done()
	if err != nil {
		return err
	}
	select {
	case err := <-b.done:
		return err
	case <-ctx.Done():
		select {
		case err := <-b.done:
			return err
		default:
		}
		return fmt.Errorf("audit append: %w: stopped waiting for the write, which may still happen: %w", ErrAuditUnavailable, ctx.Err())
	}
}

func (a *FileAudit) enqueue(ctx context.Context, b *auditBatch) error {
	select {
	case a.queue <- b:
		return nil
	default:
	}
	select {
	case a.queue <- b:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit append: %w: writer queue full: %w", ErrAuditUnavailable, ctx.Err())
	}
}

// Query returns matching events of the recent window, newest first, with
// their seq, prev_hash and hash.
func (a *FileAudit) Query(q AuditQuery) ([]AuditEvent, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return auditCollect(&a.index, q)
}

// Healthy is nil while writes succeed, an error wrapping ErrAuditUnavailable
// (and the cause) from a failed write until a write succeeds again, and
// ErrAuditClosed after Close.
func (a *FileAudit) Healthy() error {
	a.closeMu.Lock()
	closed := a.closed
	a.closeMu.Unlock()
	if closed {
		return ErrAuditClosed
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.health
}

// Close stops new Appends (they get ErrAuditClosed), waits until every queued
// batch is written, fsyncs and closes the file. It waits for Appends blocked
// on a full queue (they end when their ctx does). Later calls return the
// first call's result.
func (a *FileAudit) Close() error {
	a.closeOne.Do(func() {
		a.closeMu.Lock()
		a.closed = true
		a.closeMu.Unlock()
		a.senders.Wait()
		close(a.queue)
		<-a.writerDone
	})
	return a.closeErr
}

// run is the writer goroutine.
func (a *FileAudit) run() {
	defer close(a.writerDone)
	var retry <-chan time.Time
	for {
		select {
		case b, ok := <-a.queue:
			if !ok {
				a.finish()
				return
			}
			open := a.drain(b)
			a.commit(a.group)
			clear(a.group)
			if !open {
				a.finish()
				return
			}
		case <-retry:
			a.commit(nil) // writes just the audit_resumed record
		}
		retry = nil
		if a.failures > 0 {
			retry = time.After(auditRetryInterval)
		}
	}
}

// drain collects first and every batch already queued, up to
// auditMaxGroupBytes, into a.group. It reports false when the queue is closed.
func (a *FileAudit) drain(first *auditBatch) bool {
	a.group = append(a.group[:0], first)
	size := first.size
	for size < auditMaxGroupBytes {
		select {
		case b, ok := <-a.queue:
			if !ok {
				return false
			}
			a.group = append(a.group, b)
			size += b.size
		default:
			return true
		}
	}
	return true
}

// commit writes the group as one write (+ one fsync) and answers its Appends.
func (a *FileAudit) commit(group []*auditBatch) {
	now := a.now()
	seq, hash := a.seq, a.hash
	buf := a.buf[:0]
	var written []AuditEvent
	add := func(ev AuditEvent, body []byte) {
		seq++
		ev.Seq, ev.PrevHash = seq, hash
		buf, hash = auditSeal(buf, body, seq, hash)
		ev.Hash = hash
		written = append(written, ev)
	}
	if a.failures > 0 {
		ev, _ := auditNormalize(AuditEvent{
			EventType: EventSecurity, Severity: SeverityWarning, Actor: "production-agent",
			SourceIP: "local", UserAgent: auditSelfAgent(),
			Action: "audit_resumed", Resource: a.path, Success: true,
			Metadata: map[string]string{
				"failed_since":  a.failedSince.UTC().Format(time.RFC3339Nano),
				"failed_writes": strconv.Itoa(a.failures),
				"last_error":    a.lastErr.Error(),
			},
		}, func() time.Time { return now })
		body, _ := auditEncodeBody(ev)
		add(ev, body)
	}
	for _, b := range group {
		for i, ev := range b.events {
			add(ev, b.bodies[i])
		}
	}
	a.buf = buf
	if err := a.writeOut(buf); err != nil {
		if a.failures == 0 {
			a.failedSince = now
		}
		a.failures++
		a.lastErr = err
		werr := fmt.Errorf("audit file %s: %w: %w", a.path, ErrAuditUnavailable, err)
		a.mu.Lock()
		a.health = werr
		a.mu.Unlock()
		if a.hooks.OnWriteError != nil {
			a.hooks.OnWriteError(err)
		}
		for _, b := range group {
			b.done <- werr
		}
		return
	}
	a.seq, a.hash, a.offset = seq, hash, a.offset+int64(len(buf))
	a.failures, a.lastErr = 0, nil
	a.mu.Lock()
	for i := range written {
		a.index.push(&written[i])
	}
	a.health = nil
	a.mu.Unlock()
	if a.hooks.OnEvent != nil {
		for _, ev := range written {
			a.hooks.OnEvent(ev.EventType)
		}
	}
	for _, b := range group {
		b.done <- nil
	}
}

// writeOut appends buf after the last good record and syncs it when fsync is
// on. On failure it cuts the file back to the last good record.
func (a *FileAudit) writeOut(buf []byte) error {
	if a.dirty {
		if err := a.file.Truncate(a.offset); err != nil {
			return fmt.Errorf("truncate to the last good record at offset %d: %w", a.offset, err)
		}
		a.dirty = false
	}
	n, err := a.file.Write(buf)
	if err == nil && n != len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		a.rollback()
		return fmt.Errorf("write: %w", err)
	}
	if a.fsync {
		if err := a.file.Sync(); err != nil {
			a.rollback()
			return fmt.Errorf("fsync: %w", err)
		}
	}
	return nil
}

// rollback cuts the file back to the last good record after a failed write or
// fsync (whose records were refused); if that fails too, writeOut retries it
// before writing again.
func (a *FileAudit) rollback() {
	a.dirty = a.file.Truncate(a.offset) != nil
}

// finish runs when the queue is closed: it makes the file durable and closes it.
func (a *FileAudit) finish() {
	var errs []error
	if a.dirty {
		if err := a.file.Truncate(a.offset); err != nil {
			errs = append(errs, fmt.Errorf("truncate: %w", err))
		}
	}
	if err := a.file.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("fsync: %w", err))
	}
	if err := a.file.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		a.closeErr = fmt.Errorf("close audit file %s: %w", a.path, err)
	}
}
