//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// auditLockFile takes an exclusive advisory lock (flock) on the open audit
// file so that a second process (a misconfigured replica on a shared volume)
// cannot interleave its own chain. The lock ends when f is closed.
func auditLockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errors.New("locked by another process (two instances must not share one audit file)")
	}
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return nil
}
