package e2e

// Strict decoding of deploy/kubernetes into the official Kubernetes types.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// k8sDir is deploy/kubernetes relative to the root module.
const k8sDir = "deploy/kubernetes"

// k8sObject is one decoded manifest document.
type k8sObject struct {
	source string // file name, with the document index when a file has several
	meta   metav1.TypeMeta
	name   string
	obj    any // *appsv1.Deployment, *corev1.Service, …
}

// k8sNewObject returns a pointer to the official type for apiVersion and
// kind; unknown pairs are an error so that a new manifest gets a decoder
// here before it can ship.
func k8sNewObject(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		return &kusttypes.Kustomization{}, nil
	}
	return nil, fmt.Errorf("no decoder for apiVersion %q kind %q", apiVersion, kind)
}

var yamlDocSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// k8sDecodeStrict splits a (multi-document) YAML stream and decodes every
// document strictly into its official type: unknown or misspelt fields and
// duplicate keys are errors. Documents holding only comments are skipped.
func k8sDecodeStrict(source string, data []byte) ([]k8sObject, error) {
	docs := yamlDocSeparator.Split(string(data), -1)
	var out []k8sObject
	for i, doc := range docs {
		if yamlIsEmpty(doc) {
			continue
		}
		src := source
		if len(docs) > 1 {
			src = fmt.Sprintf("%s#%d", source, i)
		}
		var head struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		obj, err := k8sNewObject(head.APIVersion, head.Kind)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("%s: strict decode as %s: %w", src, head.Kind, err)
		}
		out = append(out, k8sObject{source: src, meta: head.TypeMeta, name: head.Metadata.Name, obj: obj})
	}
	return out, nil
}

func yamlIsEmpty(doc string) bool {
	for line := range strings.Lines(doc) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// k8sManifests strictly decodes every *.yaml and *.yml file under
// deploy/kubernetes, failing the test on any error.
func k8sManifests(t *testing.T) []k8sObject {
	t.Helper()
	dir := filepath.Join(repoRoot, k8sDir)
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no manifests in %s", dir)
	}
	var all []k8sObject
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := k8sDecodeStrict(filepath.Base(f), data)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, objs...)
	}
	return all
}

// k8sOnly returns the single object of type T, failing unless there is
// exactly one.
func k8sOnly[T any](t *testing.T, objs []k8sObject) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if v, ok := o.obj.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("manifests hold %d objects of type %T; want 1", len(found), zero)
	}
	return found[0]
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs := k8sManifests(t)
	var got []string
	for _, o := range objs {
		got = append(got, o.meta.Kind)
	}
	t.Logf("decoded: %v", got)
}

// TestStrictDecodeRejectsUnknownFields proves the decoder is strict: a
// misspelt field in a copy of the real Deployment must fail.
func TestStrictDecodeRejectsUnknownFields(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, k8sDir, "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, old, new string }{
		{"misspelt probe field", "periodSeconds: 10", "periodSecond: 10"},
		{"unknown container field", "imagePullPolicy: IfNotPresent", "imagePullPolicy: IfNotPresent\n          imagePulPolicy: Always"},
		{"duplicate key", "revisionHistoryLimit: 5", "revisionHistoryLimit: 5\n  revisionHistoryLimit: 6"},
		{"wrong type", "replicas: 3", "replicas: three"},
	}
	if _, err := k8sDecodeStrict("deployment.yaml", data); err != nil {
		t.Fatalf("the unmodified deployment.yaml: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mutated := strings.Replace(string(data), tt.old, tt.new, 1)
			if mutated == string(data) {
				t.Fatalf("deployment.yaml has no %q to mutate", tt.old)
			}
			if _, err := k8sDecodeStrict("deployment.yaml", []byte(mutated)); err == nil {
				t.Errorf("k8sDecodeStrict(%s) = nil error; want an error", tt.name)
			}
		})
	}
}
