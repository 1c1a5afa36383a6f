package e2e

// The Dockerfile cannot be built here without a container engine (see
// podman.sh for the podman run); these checks tie it to what the other
// tests exercise: the harness builds the binary with the Dockerfile's
// exact command, and the image's user, ports and entry point are the ones
// the chroot test and the Kubernetes manifests assume.

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dockerInstruction is one instruction of a Dockerfile, continuation
// lines joined.
type dockerInstruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
}

func parseDockerfile(t *testing.T) []dockerInstruction {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []dockerInstruction
	var cur strings.Builder
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if rest, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{cmd: strings.ToUpper(cmd), args: strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	return out
}

func dockerArgs(ins []dockerInstruction, cmd string) []string {
	var out []string
	for _, i := range ins {
		if i.cmd == cmd {
			out = append(out, i.args)
		}
	}
	return out
}

func TestDockerfileBuildMatchesHarness(t *testing.T) {
	ins := parseDockerfile(t)
	// The harness's build (buildAgent) with ${VERSION} for the version.
	want := `CGO_ENABLED=0 go build -trimpath -ldflags "` + strings.Replace(agentLDFlags, agentVersion, "${VERSION}", 1) + `" -o /out/production-agent .`
	runs := dockerArgs(ins, "RUN")
	if !slices.ContainsFunc(runs, func(r string) bool { return strings.HasPrefix(r, want) }) {
		t.Errorf("no RUN starts with %q; got %q", want, runs)
	}
	if !slices.ContainsFunc(runs, func(r string) bool { return strings.HasPrefix(r, "go mod download") }) {
		t.Errorf("no RUN go mod download layer (module cache before sources); got %q", runs)
	}
	froms := dockerArgs(ins, "FROM")
	wantFrom := []string{"golang:1.26 AS build", "gcr.io/distroless/static-debian12:nonroot"}
	if !slices.Equal(froms, wantFrom) {
		t.Errorf("FROM = %q; want %q", froms, wantFrom)
	}
}

func TestDockerfileRuntimeContract(t *testing.T) {
	ins := parseDockerfile(t)
	// Only the instructions of the last stage describe the image.
	last := 0
	for i, in := range ins {
		if in.cmd == "FROM" {
			last = i
		}
	}
	rt := ins[last:]
	one := func(cmd string) string {
		t.Helper()
		a := dockerArgs(rt, cmd)
		if len(a) != 1 {
			t.Fatalf("runtime stage has %d %s instructions; want 1", len(a), cmd)
		}
		return a[0]
	}
	if got := one("USER"); got != "65532:65532" {
		t.Errorf("USER %s; want 65532:65532", got)
	}
	if got := one("EXPOSE"); got != "8080 9090" {
		t.Errorf("EXPOSE %s; want 8080 9090 (server.port, observability.metrics_port)", got)
	}
	if got := one("ENTRYPOINT"); got != `["/production-agent"]` {
		t.Errorf("ENTRYPOINT %s; want exec form [\"/production-agent\"] (PID 1 gets SIGTERM)", got)
	}
	if got := one("HEALTHCHECK"); !regexp.MustCompile(`CMD \["/production-agent", "healthcheck"\]$`).MatchString(got) {
		t.Errorf("HEALTHCHECK %s; want exec-form CMD [\"/production-agent\", \"healthcheck\"] (no shell)", got)
	}
	if got := one("VOLUME"); got != `["/data"]` {
		t.Errorf("VOLUME %s; want [\"/data\"]", got)
	}
	env := one("ENV")
	for _, kv := range []string{"AGENT_CONFIG=/etc/production-agent/config.toml", "AGENT_AUDIT_BACKEND=file", "AGENT_AUDIT_FILE_PATH=/data/audit.jsonl"} {
		if !strings.Contains(env, kv) {
			t.Errorf("ENV %s; want %s", env, kv)
		}
	}
	for _, r := range dockerArgs(rt, "RUN") {
		t.Errorf("runtime stage RUN %s: distroless has no shell", r)
	}

	// The Deployment's container matches the image.
	f := loadDeploy(t)
	if got := f.container.Args; !slices.Equal(got, []string{"serve"}) {
		t.Errorf("container args %q; want [serve]", got)
	}
	if len(f.container.Command) != 0 {
		t.Errorf("container command %q; want the image's ENTRYPOINT", f.container.Command)
	}
	for _, name := range []string{"http", "metrics"} {
		if p := f.containerPort(t, name); !strings.Contains(" "+one("EXPOSE")+" ", " "+strconv.Itoa(int(p))+" ") {
			t.Errorf("container port %s = %d is not EXPOSEd", name, p)
		}
	}
}
