package main

// Fail-closed behaviour of the file backend: disk full, fsync errors,
// read-only filesystems, a stuck writer, and recovery.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestFileAuditFailClosedAndRecovers(t *testing.T) {
	enospc := &os.PathError{Op: "write", Path: "fake.jsonl", Err: syscall.ENOSPC}
	tests := []struct {
		name  string
		fail  func(*auditFakeFile)
		cause error
	}{
		{"disk full on write", func(f *auditFakeFile) { f.writeErr = enospc }, syscall.ENOSPC},
		{"fsync fails", func(f *auditFakeFile) { f.syncErr = syscall.EIO }, syscall.EIO},
		{"write and truncate fail", func(f *auditFakeFile) { f.writeErr = enospc; f.truncErr = syscall.EROFS }, syscall.ENOSPC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &auditFakeFile{}
			var writeErrs []error
			a := auditStartFake(t, f, true, AuditHooks{OnWriteError: func(err error) { writeErrs = append(writeErrs, err) }})
			defer a.Close()
			if err := a.Append(context.Background(), auditEv("before")); err != nil {
				t.Fatal(err)
			}
			good, _ := f.snapshot()

			f.set(tt.fail)
			for i := range 2 {
				err := a.Append(context.Background(), auditEv("lost-1"), auditEv("lost-2"))
				if !errors.Is(err, ErrAuditUnavailable) || (i == 0 && !errors.Is(err, tt.cause)) {
					t.Errorf("Append on a failing file = %v; want ErrAuditUnavailable wrapping %v", err, tt.cause)
				}
			}
			if err := a.Healthy(); !errors.Is(err, ErrAuditUnavailable) {
				t.Errorf("Healthy() while failing = %v; want ErrAuditUnavailable", err)
			}
			if len(writeErrs) != 2 {
				t.Errorf("OnWriteError calls = %d; want 2", len(writeErrs))
			}
			if got, _ := a.Query(AuditQuery{}); len(got) != 1 {
				t.Errorf("Query() while failing has %d events; want 1 (refused records are not indexed)", len(got))
			}

			f.set(func(f *auditFakeFile) { f.writeErr, f.syncErr, f.truncErr = nil, nil, nil })
			if err := a.Append(context.Background(), auditEv("after")); err != nil {
				t.Fatalf("Append after the disk recovered: %v", err)
			}
			if err := a.Healthy(); err != nil {
				t.Errorf("Healthy() after recovery = %v; want nil", err)
			}
			data, _ := f.snapshot()
			if !bytes.HasPrefix(data, good) {
				t.Errorf("records before the failure were changed")
			}
			if n := auditMustVerify(t, data); n != 3 {
				t.Fatalf("records after recovery = %d; want 3 (before, audit_resumed, after)", n)
			}
			evs := auditParseLines(t, data)
			if r := evs[1]; r.Action != "audit_resumed" || r.Seq != 2 || r.Metadata["failed_writes"] != "2" || r.Metadata["last_error"] == "" {
				t.Errorf("record 2 = %s seq %d %v; want audit_resumed seq 2 with failed_writes 2", r.Action, r.Seq, r.Metadata)
			}
			if evs[2].Action != "after" || evs[2].Seq != 3 {
				t.Errorf("record 3 = %s seq %d; want after, seq 3", evs[2].Action, evs[2].Seq)
			}
		})
	}
}

func TestFileAuditRecoversWithoutTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &auditFakeFile{writeErr: syscall.ENOSPC}
		a := auditStartFake(t, f, true, AuditHooks{})
		if err := a.Append(context.Background(), auditEv("x")); !errors.Is(err, ErrAuditUnavailable) {
			t.Fatalf("Append = %v; want ErrAuditUnavailable", err)
		}
		<-time.After(auditRetryInterval + time.Second) // the writer retries and fails again
		synctest.Wait()
		if err := a.Healthy(); err == nil {
			t.Fatalf("Healthy() = nil while the disk is still full")
		}
		f.set(func(f *auditFakeFile) { f.writeErr = nil })
		<-time.After(auditRetryInterval)
		synctest.Wait()
		if err := a.Healthy(); err != nil {
			t.Errorf("Healthy() after the disk recovered, with no Append = %v; want nil", err)
		}
		data, _ := f.snapshot()
		evs := auditParseLines(t, data)
		if len(evs) != 1 || evs[0].Action != "audit_resumed" || evs[0].Metadata["failed_writes"] != "2" {
			t.Errorf("file = %+v; want just the audit_resumed record after 2 failed writes", evs)
		}
		a.Close()
	})
}

// auditReadOnlyFile wraps a real file; while readOnly is set every change
// fails with EROFS, as on a filesystem remounted read-only.
type auditReadOnlyFile struct {
	*os.File
	mu       sync.Mutex
	readOnly bool
}

func (f *auditReadOnlyFile) ro() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.readOnly }

func (f *auditReadOnlyFile) Write(p []byte) (int, error) {
	if f.ro() {
		return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.EROFS}
	}
	return f.File.Write(p)
}

func (f *auditReadOnlyFile) Sync() error {
	if f.ro() {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: syscall.EROFS}
	}
	return f.File.Sync()
}

func (f *auditReadOnlyFile) Truncate(n int64) error {
	if f.ro() {
		return &os.PathError{Op: "truncate", Path: f.Name(), Err: syscall.EROFS}
	}
	return f.File.Truncate(n)
}

func TestFileAuditReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if os.Geteuid() != 0 {
		// A real read-only file refuses the open (root ignores modes, hence
		// the injected file below, which runs for everyone).
		os.WriteFile(path, nil, 0o400)
		if a, err := openFileAudit(path, true, 10, AuditHooks{}, nil); err == nil {
			a.Close()
			t.Errorf("openFileAudit(read-only file) = nil error; want an error")
		}
		os.Chmod(path, 0o600)
	}
	f, err := auditOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	ro := &auditReadOnlyFile{File: f}
	a := auditStart(path, ro, auditTail{hash: auditGenesisHash}, true, 10, AuditHooks{}, nil)
	if err := a.Append(context.Background(), auditEv("ok")); err != nil {
		t.Fatal(err)
	}
	ro.mu.Lock()
	ro.readOnly = true
	ro.mu.Unlock()
	if err := a.Append(context.Background(), auditEv("refused")); !errors.Is(err, syscall.EROFS) || !errors.Is(err, ErrAuditUnavailable) {
		t.Errorf("Append on a read-only file = %v; want ErrAuditUnavailable wrapping EROFS", err)
	}
	if a.Healthy() == nil {
		t.Errorf("Healthy() on a read-only file = nil; want an error")
	}
	ro.mu.Lock()
	ro.readOnly = false
	ro.mu.Unlock()
	if err := a.Append(context.Background(), auditEv("back")); err != nil {
		t.Fatalf("Append after remount: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if n := auditMustVerify(t, data); n != 3 {
		t.Errorf("records = %d; want 3 (ok, audit_resumed, back)", n)
	}
}

func TestFileAuditQueueFullRespectsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &auditFakeFile{syncGate: make(chan struct{})}
		a := auditStartFake(t, f, true, AuditHooks{})
		var wg sync.WaitGroup
		for i := range auditQueueBatches + 1 { // one in the writer, the rest fill the queue
			wg.Go(func() {
				if err := a.Append(context.Background(), auditEv(fmt.Sprint(i))); err != nil {
					t.Errorf("Append: %v", err)
				}
			})
			if i == 0 {
				synctest.Wait() // the writer holds the first batch alone
			}
		}
		synctest.Wait()
		if got := len(a.queue); got != auditQueueBatches {
			t.Fatalf("queued batches = %d; want a full queue of %d", got, auditQueueBatches)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := a.Append(ctx, auditEv("late"))
		if !errors.Is(err, ErrAuditUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Append with a full queue = %v; want ErrAuditUnavailable and DeadlineExceeded", err)
		}
		// A queued batch whose caller gives up is still written.
		ctx2, cancel2 := context.WithCancel(context.Background())
		gate := f.syncGate
		go func() {
			<-time.After(time.Second)
			close(gate)
		}()
		wg.Wait()
		done := make(chan error, 1)
		f.set(func(f *auditFakeFile) { f.syncGate = make(chan struct{}) })
		go func() { done <- a.Append(ctx2, auditEv("abandoned")) }()
		synctest.Wait()
		cancel2()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Append abandoned while writing = %v; want context.Canceled", err)
		}
		close(f.syncGate)
		// A context already done writes nothing.
		if err := a.Append(ctx2, auditEv("cancelled")); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrAuditUnavailable) {
			t.Errorf("Append with a cancelled ctx = %v; want ErrAuditUnavailable and context.Canceled", err)
		}
		a.Close()
		data, _ := f.snapshot()
		evs := auditParseLines(t, data)
		if n := auditMustVerify(t, data); n != auditQueueBatches+2 || evs[len(evs)-1].Action != "abandoned" {
			t.Errorf("records = %d, last %q; want %d, abandoned", n, evs[len(evs)-1].Action, auditQueueBatches+2)
		}
	})
}

func TestFileAuditCloseDrainsQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &auditFakeFile{syncGate: make(chan struct{})}
		a := auditStartFake(t, f, true, AuditHooks{})
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				if err := a.Append(context.Background(), auditEv(fmt.Sprint(i))); err != nil {
					t.Errorf("Append queued before Close: %v", err)
				}
			})
		}
		synctest.Wait()
		closed := make(chan error, 1)
		go func() { closed <- a.Close() }()
		synctest.Wait()
		if err := a.Append(context.Background(), auditEv("after close")); !errors.Is(err, ErrAuditClosed) {
			t.Errorf("Append during Close = %v; want ErrAuditClosed", err)
		}
		close(f.syncGate)
		if err := <-closed; err != nil {
			t.Errorf("Close = %v", err)
		}
		wg.Wait()
		data, _ := f.snapshot()
		if n := auditMustVerify(t, data); n != 10 {
			t.Errorf("records after Close = %d; want 10", n)
		}
	})
}
