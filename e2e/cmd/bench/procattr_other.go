//go:build !linux

package main

import "os/exec"

// setProcAttr: only Linux can tie a child's life to ours; elsewhere the
// deferred stops are all there is (and /proc, which the harness reads,
// does not exist anyway).
func setProcAttr(*exec.Cmd) {}
