//go:build linux

package main

import (
	"context"
	"errors"
	"syscall"
	"testing"
)

// TestFileAuditDevFull appends to /dev/full, where every write fails with a
// real ENOSPC from the kernel.
func TestFileAuditDevFull(t *testing.T) {
	var writeErrs int
	a, err := openFileAudit("/dev/full", true, 10, AuditHooks{OnWriteError: func(error) { writeErrs++ }}, nil)
	if err != nil {
		t.Fatalf("openFileAudit(/dev/full): %v", err)
	}
	err = a.Append(context.Background(), auditEv("x"))
	if !errors.Is(err, ErrAuditUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Append to /dev/full = %v; want ErrAuditUnavailable wrapping ENOSPC", err)
	}
	if h := a.Healthy(); !errors.Is(h, syscall.ENOSPC) {
		t.Errorf("Healthy() = %v; want ENOSPC", h)
	}
	if writeErrs != 1 {
		t.Errorf("OnWriteError calls = %d; want 1", writeErrs)
	}
	if got, _ := a.Query(AuditQuery{}); len(got) != 0 {
		t.Errorf("Query() = %d events; want none stored", len(got))
	}
	a.Close() // /dev/full cannot be truncated; Close reports it but must not hang
}
