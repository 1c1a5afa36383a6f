//go:build !unix

package main

import "os"

// auditLockFile does nothing where flock is unavailable; operators must
// ensure one process per audit file.
func auditLockFile(*os.File) error { return nil }
