package e2e

// Checks of deploy/kubernetes against the binary: the manifests build with
// kustomize, decode strictly, and what they promise (probe routes, ports,
// shutdown budget, auth, hardening) is what the built binary does.

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// nonrootUID is distroless's "nonroot" user and group.
const nonrootUID = 65532

// dummySecret stands in for every required secretKeyRef: at least 32 bytes
// so that it is a valid HS256 secret.
const dummySecret = "e2e-dummy-secret-0123456789abcdefghijklmnopqrstuvwxyz"

// deployFixture is the decoded manifests plus the facts tests compare.
type deployFixture struct {
	objs       []k8sObject
	deploy     *appsv1.Deployment
	container  corev1.Container
	configText string            // the ConfigMap's config.toml
	config     map[string]string // its keys, "section.key"
}

func loadDeploy(t *testing.T) deployFixture {
	t.Helper()
	objs := k8sManifests(t)
	d := k8sOnly[*appsv1.Deployment](t, objs)
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("Deployment has %d containers; want 1", n)
	}
	cm := k8sOnly[*corev1.ConfigMap](t, objs)
	text, ok := cm.Data["config.toml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no config.toml", cm.Name)
	}
	keys, err := tomlKeys(text)
	if err != nil {
		t.Fatalf("ConfigMap config.toml: %v", err)
	}
	return deployFixture{objs: objs, deploy: d, container: d.Spec.Template.Spec.Containers[0], configText: text, config: keys}
}

// configInt is an integer key of the ConfigMap's config.toml, or its
// built-in default (DESIGN §5) when absent.
func (f deployFixture) configInt(t *testing.T, key string, def int) int {
	t.Helper()
	n, err := tomlInt(f.config, key, def)
	if err != nil {
		t.Fatalf("ConfigMap config.toml: %v", err)
	}
	return n
}

// containerPort returns the number of the named container port.
func (f deployFixture) containerPort(t *testing.T, name string) int32 {
	t.Helper()
	for _, p := range f.container.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container has no port named %q", name)
	return 0
}

func TestKustomizeBuild(t *testing.T) {
	dir := filepath.Join(repoRoot, k8sDir)
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", k8sDir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := k8sDecodeStrict("kustomize build", out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.meta.Kind+"/"+o.name)
	}
	slices.Sort(got)
	want := []string{
		"ConfigMap/production-agent-config", "Deployment/production-agent",
		"HorizontalPodAutoscaler/production-agent", "PodDisruptionBudget/production-agent", "Service/production-agent",
	}
	if !slices.Equal(got, want) {
		t.Errorf("kustomize build = %v; want %v", got, want)
	}
	d := k8sOnly[*appsv1.Deployment](t, objs)
	if img := d.Spec.Template.Spec.Containers[0].Image; !strings.Contains(img, "production-agent:") {
		t.Errorf("built image = %q; want the kustomization's images: entry applied", img)
	}

	// Every manifest file in the directory is listed, so none is forgotten.
	kust := k8sOnly[*kusttypes.Kustomization](t, k8sManifests(t))
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		base := filepath.Base(f)
		if base != "kustomization.yaml" && !slices.Contains(kust.Resources, base) {
			t.Errorf("%s is not in kustomization.yaml resources %v", base, kust.Resources)
		}
	}
}

func TestDeploymentProbes(t *testing.T) {
	f := loadDeploy(t)
	apiPort := int32(f.configInt(t, "server.port", 8080))
	if got := f.containerPort(t, "http"); got != apiPort {
		t.Errorf("container port http = %d; want server.port %d", got, apiPort)
	}
	metricsPort := int32(f.configInt(t, "observability.metrics_port", 9090))
	if got := f.containerPort(t, "metrics"); got != metricsPort {
		t.Errorf("container port metrics = %d; want observability.metrics_port %d", got, metricsPort)
	}
	tests := []struct {
		name  string
		probe *corev1.Probe
		path  string
		want  corev1.Probe // timing fields only (the seed's values)
	}{
		{"startup", f.container.StartupProbe, "/health", corev1.Probe{PeriodSeconds: 5, FailureThreshold: 30}},
		{"liveness", f.container.LivenessProbe, "/health/live", corev1.Probe{InitialDelaySeconds: 10, PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 3}},
		{"readiness", f.container.ReadinessProbe, "/health/ready", corev1.Probe{InitialDelaySeconds: 5, PeriodSeconds: 5, TimeoutSeconds: 3, FailureThreshold: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.probe
			if p == nil || p.HTTPGet == nil {
				t.Fatalf("%s probe = %+v; want an httpGet probe", tt.name, p)
			}
			if p.HTTPGet.Path != tt.path {
				t.Errorf("path = %q; want %q", p.HTTPGet.Path, tt.path)
			}
			if p.HTTPGet.Port != intstr.FromString("http") {
				t.Errorf("port = %v; want the named port http", p.HTTPGet.Port.String())
			}
			got := [4]int32{p.InitialDelaySeconds, p.PeriodSeconds, p.TimeoutSeconds, p.FailureThreshold}
			want := [4]int32{tt.want.InitialDelaySeconds, tt.want.PeriodSeconds, tt.want.TimeoutSeconds, tt.want.FailureThreshold}
			if got != want {
				t.Errorf("initialDelay, period, timeout, failureThreshold = %v; want %v", got, want)
			}
		})
	}
}

func TestDeploymentHardening(t *testing.T) {
	f := loadDeploy(t)
	spec := f.deploy.Spec.Template.Spec
	if f.deploy.Spec.Replicas == nil || *f.deploy.Spec.Replicas != 3 {
		t.Errorf("replicas = %v; want 3", f.deploy.Spec.Replicas)
	}
	if ru := f.deploy.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rollingUpdate = %+v; want maxUnavailable 0", ru)
	}
	ps := spec.SecurityContext
	if ps == nil || !isTrue(ps.RunAsNonRoot) || !isInt64(ps.RunAsUser, nonrootUID) || !isInt64(ps.FSGroup, nonrootUID) {
		t.Errorf("pod securityContext = %+v; want runAsNonRoot, runAsUser and fsGroup %d", ps, nonrootUID)
	}
	if ps != nil && (ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
		t.Errorf("pod seccompProfile = %+v; want RuntimeDefault", ps.SeccompProfile)
	}
	sc := f.container.SecurityContext
	if sc == nil {
		t.Fatal("container has no securityContext")
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"runAsNonRoot: true", isTrue(sc.RunAsNonRoot)},
		{"runAsUser: 65532", isInt64(sc.RunAsUser, nonrootUID)},
		{"readOnlyRootFilesystem: true", isTrue(sc.ReadOnlyRootFilesystem)},
		{"allowPrivilegeEscalation: false", sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation},
		{"privileged not true", !isTrue(sc.Privileged)},
		{"capabilities drop ALL, add none", sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL") && len(sc.Capabilities.Add) == 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("container securityContext: want %s; got %+v", c.name, sc)
		}
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken: want false (the service never calls the API server)")
	}
	r := f.container.Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := r.Requests[name]
		lim, okLim := r.Limits[name]
		if !okReq || !okLim || req.IsZero() || lim.Cmp(req) < 0 {
			t.Errorf("resources %s: requests %v, limits %v; want both set, limit >= request", name, r.Requests[name], r.Limits[name])
		}
	}
	// With a read-only root, every path the service writes must be a
	// writable volume: the audit file's directory and /tmp.
	env := envValues(f.container)
	auditDir := filepath.Dir(env["AGENT_AUDIT_FILE_PATH"])
	if env["AGENT_AUDIT_BACKEND"] != "file" || !writableMount(f.container, auditDir) {
		t.Errorf("audit: backend %q in %q; want backend file on a writable volume mount", env["AGENT_AUDIT_BACKEND"], auditDir)
	}
	if !writableMount(f.container, "/tmp") {
		t.Error("/tmp: want a writable volume (readOnlyRootFilesystem)")
	}
}

func TestDeploymentShutdownBudget(t *testing.T) {
	f := loadDeploy(t)
	spec := f.deploy.Spec.Template.Spec
	delay := f.configInt(t, "server.shutdown_delay_seconds", 0)
	drain := f.configInt(t, "server.shutdown_timeout_seconds", 30)
	if delay < 1 {
		t.Errorf("server.shutdown_delay_seconds = %d; want >= 1 so load balancers see readiness fail before listeners close", delay)
	}
	pre := f.container.Lifecycle
	if pre == nil || pre.PreStop == nil || pre.PreStop.Sleep == nil {
		t.Fatalf("lifecycle = %+v; want preStop sleep (native action, no shell in the image)", pre)
	}
	if pre.PreStop.Exec != nil || pre.PreStop.HTTPGet != nil {
		t.Error("preStop: want only the sleep action (the image has no shell)")
	}
	sleep := int(pre.PreStop.Sleep.Seconds)
	need := int64(sleep + delay + drain)
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= need {
		t.Errorf("terminationGracePeriodSeconds = %v; want > preStop %d + delay %d + timeout %d = %d (room to flush audit)", g, sleep, delay, drain, need)
	}
}

func TestServicePDBAndHPA(t *testing.T) {
	f := loadDeploy(t)
	podLabels := f.deploy.Spec.Template.Labels
	svc := k8sOnly[*corev1.Service](t, f.objs)
	if !selects(svc.Spec.Selector, podLabels) {
		t.Errorf("Service selector %v does not select pod labels %v", svc.Spec.Selector, podLabels)
	}
	names := map[string]bool{}
	for _, p := range svc.Spec.Ports {
		names[p.Name] = true
		if p.TargetPort.Type != intstr.String {
			t.Errorf("Service port %s targets %v; want a named container port", p.Name, p.TargetPort.String())
			continue
		}
		f.containerPort(t, p.TargetPort.StrVal)
	}
	if !names["http"] || !names["metrics"] {
		t.Errorf("Service ports %v; want http and metrics", names)
	}
	ann := f.deploy.Spec.Template.Annotations
	if ann["prometheus.io/port"] != strconv.Itoa(int(f.containerPort(t, "metrics"))) || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("pod annotations %v; want prometheus.io/port = the metrics port and path /metrics", ann)
	}

	pdb := k8sOnly[*policyv1.PodDisruptionBudget](t, f.objs)
	if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("PDB selector %v does not select pod labels %v", pdb.Spec.Selector, podLabels)
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB maxUnavailable = %v; want 1", pdb.Spec.MaxUnavailable)
	}

	hpa := k8sOnly[*autoscalingv2.HorizontalPodAutoscaler](t, f.objs)
	ref := hpa.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != f.deploy.Name {
		t.Errorf("HPA scaleTargetRef = %+v; want apps/v1 Deployment %s", ref, f.deploy.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != *f.deploy.Spec.Replicas || hpa.Spec.MaxReplicas <= *hpa.Spec.MinReplicas {
		t.Errorf("HPA min %v max %d; want min = Deployment replicas and max above it", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
}

func TestDeploymentSecrets(t *testing.T) {
	f := loadDeploy(t)
	if f.config["auth.enabled"] != "true" {
		t.Errorf("ConfigMap [auth] enabled = %q; want true", f.config["auth.enabled"])
	}
	want := map[string]bool{"AGENT_AUTH_JWT_SECRET": false, "ANTHROPIC_API_KEY": true, "OPENAI_API_KEY": true} // name → optional
	for _, e := range f.container.Env {
		opt, secret := want[e.Name]
		if !secret {
			continue
		}
		delete(want, e.Name)
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("env %s: want a secretKeyRef, never a literal value", e.Name)
			continue
		}
		if got := isTrue(e.ValueFrom.SecretKeyRef.Optional); got != opt {
			t.Errorf("env %s optional = %v; want %v", e.Name, got, opt)
		}
	}
	for name := range want {
		t.Errorf("env %s: missing", name)
	}
	// The API keys file named by the config is mounted from a Secret.
	path := f.config["auth.api_keys_file"]
	m, v := mountFor(f, path)
	if m == nil || v == nil || v.Secret == nil || !m.ReadOnly {
		t.Errorf("auth.api_keys_file %q: want it on a read-only Secret volume", path)
	}
	// AGENT_CONFIG points at the ConfigMap's config.toml.
	cfgPath := envValues(f.container)["AGENT_CONFIG"]
	m, v = mountFor(f, cfgPath)
	if m == nil || v == nil || v.ConfigMap == nil || filepath.Base(cfgPath) != "config.toml" {
		t.Errorf("AGENT_CONFIG %q: want the config.toml of a ConfigMap volume", cfgPath)
	}
}

var quotedAbsPath = regexp.MustCompile(`"/[^"]*"`)

// podSandbox maps the pod's volume mounts to local directories so the
// binary can run with the Deployment's configuration.
type podSandbox struct {
	env      map[string]string // the container's env, paths remapped
	keysFile string            // local copy of auth.api_keys_file
}

// newPodSandbox lays out the volumes of the Deployment under a temporary
// directory: the ConfigMap's config.toml (its absolute paths remapped),
// an API keys file holding one key made by keygen, and empty writable
// volumes. Required secretKeyRefs get dummySecret; optional ones are left
// unset, as with a Secret that lacks them.
func newPodSandbox(t *testing.T, f deployFixture) podSandbox {
	t.Helper()
	root := t.TempDir()
	local := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	// remapPath moves an absolute path under a volume mount into root;
	// other paths stay as they are.
	remapPath := func(p string) string {
		if m, _ := mountFor(f, p); m != nil {
			return local(p)
		}
		return p
	}
	// remap applies remapPath to every quoted absolute path in a TOML text.
	remap := func(text string) string {
		return quotedAbsPath.ReplaceAllStringFunc(text, func(q string) string {
			return `"` + remapPath(strings.Trim(q, `"`)) + `"`
		})
	}
	for _, m := range f.container.VolumeMounts {
		if err := os.MkdirAll(local(m.MountPath), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{}
	for _, e := range f.container.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			if !isTrue(e.ValueFrom.SecretKeyRef.Optional) {
				env[e.Name] = dummySecret
			}
		case e.ValueFrom != nil:
			t.Fatalf("env %s: valueFrom other than secretKeyRef is not modelled here", e.Name)
		case strings.HasPrefix(e.Value, "/"):
			env[e.Name] = remapPath(e.Value)
		default:
			env[e.Name] = e.Value
		}
	}
	inside := func(p string) bool { return strings.HasPrefix(p, root+string(filepath.Separator)) }
	cfgPath := env["AGENT_CONFIG"]
	if !inside(cfgPath) {
		t.Fatalf("AGENT_CONFIG %q is not under a volume mount", cfgPath)
	}
	if err := os.WriteFile(cfgPath, []byte(remap(f.configText)), 0o644); err != nil {
		t.Fatal(err)
	}
	keysFile := remapPath(f.config["auth.api_keys_file"])
	if !inside(keysFile) {
		t.Fatalf("auth.api_keys_file %q is not under a volume mount", keysFile)
	}
	if err := os.WriteFile(keysFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return podSandbox{env: env, keysFile: keysFile}
}

func TestConfigMapAcceptedByBinary(t *testing.T) {
	f := loadDeploy(t)
	box := newPodSandbox(t, f)
	cmd := exec.Command(agentBinary, "config", "-check")
	cmd.Env = cleanEnv(box.env)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration OK") {
		t.Fatalf("production-agent config -check with the ConfigMap and the Deployment's env: %v\n%s", err, out)
	}
}

// TestDeploymentRunsAsDeclared runs the binary with the ConfigMap and the
// Deployment's env and checks what the kubelet and clients would see:
// every probe answers 200 without credentials, /chat needs them (auth on),
// and SIGTERM turns readiness 503 at once, keeps serving for
// shutdown_delay_seconds and exits 0 within the grace period.
func TestDeploymentRunsAsDeclared(t *testing.T) {
	f := loadDeploy(t)
	box := newPodSandbox(t, f)

	key, line := keygen(t, "alice", "user")
	if err := os.WriteFile(box.keysFile, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	p := startAgent(t, box.env)
	probes := []*corev1.Probe{f.container.StartupProbe, f.container.LivenessProbe, f.container.ReadinessProbe}
	for _, pr := range probes {
		if code, body := doJSON(t, http.MethodGet, p.API+pr.HTTPGet.Path, nil, nil); code != http.StatusOK {
			t.Errorf("GET %s without credentials = %d %s; want 200", pr.HTTPGet.Path, code, body)
		}
	}
	chat := map[string]any{"user_id": "alice", "session_id": "s1", "message": "What is 12*7?"}
	if code, body := doJSON(t, http.MethodPost, p.API+"/chat", nil, chat); code != http.StatusUnauthorized {
		t.Errorf("POST /chat without credentials = %d %s; want 401 (auth on)", code, body)
	}
	auth := http.Header{"Authorization": {"Bearer " + key}}
	if code, body := doJSON(t, http.MethodPost, p.API+"/chat", auth, chat); code != http.StatusOK {
		t.Errorf("POST /chat with a keygen key = %d %s; want 200", code, body)
	}
	if code, _ := doJSON(t, http.MethodGet, p.Admin+"/metrics", nil, nil); code != http.StatusOK {
		t.Errorf("GET admin /metrics = %d; want 200", code)
	}

	delay := time.Duration(f.configInt(t, "server.shutdown_delay_seconds", 0)) * time.Second
	start := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	notReady := pollUntil(t.Context(), delay, func() bool {
		code, _ := doJSON(t, http.MethodGet, p.API+"/health/ready", nil, nil)
		return code == http.StatusServiceUnavailable
	})
	if !notReady {
		t.Errorf("/health/ready did not turn 503 within shutdown_delay_seconds (%v) of SIGTERM", delay)
	}
	// Still serving during the delay: the pod is only leaving the endpoints.
	if code, _ := doJSON(t, http.MethodGet, p.API+"/health/live", nil, nil); code != http.StatusOK {
		t.Errorf("/health/live during the shutdown delay = %d; want 200", code)
	}
	code, err := p.Wait()
	elapsed := time.Since(start)
	if err != nil || code != 0 {
		t.Errorf("exit after SIGTERM = %d, %v; want 0", code, err)
	}
	grace := time.Duration(*f.deploy.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	if elapsed < delay || elapsed > grace {
		t.Errorf("SIGTERM to exit took %v; want between shutdown_delay %v and the grace period %v", elapsed, delay, grace)
	}
}

func isTrue(b *bool) bool            { return b != nil && *b }
func isInt64(p *int64, v int64) bool { return p != nil && *p == v }

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestDeploymentMemoryLimit: the Go runtime's soft memory limit is set a
// little below the container's memory limit (80–95 %), leaving room for
// memory the runtime does not manage, so that the collector works harder
// before the kernel kills the pod. The pod-as-declared tests run the binary
// with it, which would refuse to start on a value it cannot parse.
func TestDeploymentMemoryLimit(t *testing.T) {
	f := loadDeploy(t)
	limit, ok := f.container.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		t.Fatal("the container has no memory limit")
	}
	value, ok := envValues(f.container)["GOMEMLIMIT"]
	if !ok {
		t.Fatal("env GOMEMLIMIT: missing (or not a literal value)")
	}
	m := regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB|TiB)?$`).FindStringSubmatch(value)
	if m == nil {
		t.Fatalf("GOMEMLIMIT %q: want a byte count with an optional B, KiB, MiB, GiB or TiB suffix", value)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	n <<= map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]]
	if ratio := float64(n) / float64(limit.Value()); ratio < 0.80 || ratio > 0.95 {
		t.Errorf("GOMEMLIMIT %s is %.0f %% of limits.memory %s; want 80–95 %%", value, 100*ratio, limit.String())
	}
}

// envValues is the container's literal env values by name.
func envValues(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			m[e.Name] = e.Value
		}
	}
	return m
}

// mountFor returns the volume mount whose path contains path (the
// deepest), with its volume.
func mountFor(f deployFixture, path string) (*corev1.VolumeMount, *corev1.Volume) {
	var best *corev1.VolumeMount
	for i, m := range f.container.VolumeMounts {
		if (path == m.MountPath || strings.HasPrefix(path, m.MountPath+"/")) && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = &f.container.VolumeMounts[i]
		}
	}
	if best == nil {
		return nil, nil
	}
	for i, v := range f.deploy.Spec.Template.Spec.Volumes {
		if v.Name == best.Name {
			return best, &f.deploy.Spec.Template.Spec.Volumes[i]
		}
	}
	return best, nil
}

// writableMount reports whether dir is on a volume mounted read-write.
func writableMount(c corev1.Container, dir string) bool {
	for _, m := range c.VolumeMounts {
		if (dir == m.MountPath || strings.HasPrefix(dir, m.MountPath+"/")) && !m.ReadOnly {
			return true
		}
	}
	return false
}
