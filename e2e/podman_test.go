//go:build podman

package e2e

// go test -tags podman -run TestPodmanImage ./...  (root; installs podman,
// buildah, runc and busybox-static with apt when missing; about 2 minutes).

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPodmanImage builds the unchanged Dockerfile with podman against
// local stand-ins of its base images and runs the image: see podman.sh.
func TestPodmanImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("podman.sh must run as root: euid is %d", os.Geteuid())
	}
	cmd := exec.Command("bash", filepath.Join(repoRoot, "e2e", "podman.sh"))
	cmd.Env = append(os.Environ(), "VERSION="+agentVersion)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil || !strings.Contains(out.String(), "podman e2e: PASS") {
		t.Fatalf("podman.sh: %v\n%s", err, out.String())
	}
	t.Logf("%s", out.String())
}
