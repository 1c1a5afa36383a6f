package e2e

// Helpers of security_test.go: HTTP calls that keep the headers, the admin
// API (incidents, audit, dashboard), the incident counter on /metrics, API
// keys from `keygen`, and a fake OpenAI-compatible upstream whose answer
// carries secrets.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// secChat is POST /chat on p's API listener.
func secChat(t *testing.T, p *agentProc, header http.Header, user, session, message string) httpResp {
	t.Helper()
	return doHTTP(t, nil, http.MethodPost, p.API+"/chat", header, chatBody(user, session, message))
}

// secErrType is the error.type of an error answer ("" if none).
func secErrType(r httpResp) string {
	var e struct {
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Type
}

// secWant checks the status and, for an error, the error type.
func secWant(t *testing.T, what string, r httpResp, status int, errType string) {
	t.Helper()
	if r.Status != status || secErrType(r) != errType {
		t.Errorf("%s = %d %s; want %d %q", what, r.Status, bytes.TrimSpace(r.Body), status, errType)
	}
}

// secWantOK checks a 200 answer and fails the test at once otherwise.
func secWantOK(t *testing.T, what string, r httpResp) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%s = %d %s; want 200", what, r.Status, bytes.TrimSpace(r.Body))
	}
}

// secOne returns the only incident of typ, failing the test when there is
// not exactly one.
func secOne(t *testing.T, p *agentProc, header http.Header, typ string) incidentRecord {
	t.Helper()
	incs := fetchIncidents(t, p, header, "type="+typ)
	if len(incs) != 1 {
		t.Fatalf("%s incidents = %s; want exactly one", typ, secDescribe(incs))
	}
	return incs[0]
}

// secDescribe lists incidents as type/level/source(count) for messages.
func secDescribe(incs []incidentRecord) string {
	parts := []string{}
	for _, inc := range incs {
		parts = append(parts, inc.IncidentType+"/"+inc.ThreatLevel+"/"+inc.Source+"(count "+inc.Metadata["count"]+")")
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// secWantIncident checks an incident's type, level and source ("" skips
// the source) and that action_taken says what the request path did
// (substring; "" skips).
func secWantIncident(t *testing.T, inc incidentRecord, typ, level, source, action string) {
	t.Helper()
	if inc.IncidentType != typ || inc.ThreatLevel != level || (source != "" && inc.Source != source) ||
		!strings.Contains(inc.ActionTaken, action) || inc.Status != "open" || inc.ID == "" || inc.Timestamp.IsZero() {
		t.Errorf("incident %+v; want an open %s %s incident from %q, action_taken containing %q", inc, level, typ, source, action)
	}
}

var secMetricRE = regexp.MustCompile(`^agent_security_incidents_total\{([^}]*)\} (\S+)$`)
var secLabelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// secIncidentCounts scrapes /metrics on the admin listener and returns
// agent_security_incidents_total by "type/level".
func secIncidentCounts(t *testing.T, p *agentProc) map[string]float64 {
	t.Helper()
	r := doHTTP(t, nil, http.MethodGet, p.Admin+"/metrics", nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics = %d; want 200", r.Status)
	}
	out := make(map[string]float64)
	for line := range strings.Lines(string(r.Body)) {
		m := secMetricRE.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		labels := make(map[string]string)
		for _, l := range secLabelRE.FindAllStringSubmatch(m[1], -1) {
			labels[l[1]] = l[2]
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[labels["type"]+"/"+labels["level"]] += v
	}
	return out
}

// secCheckRecorded proves inc is counted in
// agent_security_incidents_total{type,level} at its current level and
// audited as a security event naming it with that level.
func secCheckRecorded(t *testing.T, p *agentProc, admin http.Header, inc incidentRecord) {
	t.Helper()
	counts := secIncidentCounts(t, p)
	if key := inc.IncidentType + "/" + inc.ThreatLevel; counts[key] < 1 {
		t.Errorf("agent_security_incidents_total{type=%q,level=%q} is %v (all: %v); want >= 1 for incident %s",
			inc.IncidentType, inc.ThreatLevel, counts[key], counts, inc.ID)
	}
	events := fetchAudit(t, p, admin, "event_type=security&limit=1000")
	found := false
	for _, ev := range events {
		if ev.EventType != "security" || ev.Metadata["incident_id"] != inc.ID {
			continue
		}
		if (ev.Action == "security.incident" || ev.Action == "security.incident_escalated") &&
			ev.Metadata["incident_type"] == inc.IncidentType && ev.Metadata["threat_level"] == inc.ThreatLevel {
			found = true
		}
	}
	if !found {
		t.Errorf("GET /audit?event_type=security has no security.incident event for %s incident %s at level %s",
			inc.IncidentType, inc.ID, inc.ThreatLevel)
	}
}

// secKeys makes one key per "user:role" spec, writes the keys file and
// returns the -set arguments turning auth on with it, and the keys by user.
func secKeys(t *testing.T, specs ...string) (args []string, keys map[string]string) {
	t.Helper()
	keys = make(map[string]string)
	var lines []string
	for _, s := range specs {
		user, role, _ := strings.Cut(s, ":")
		k, line := keygen(t, user, role)
		keys[user] = k
		lines = append(lines, line)
	}
	path := filepath.Join(t.TempDir(), "api_keys")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"-set", "auth.enabled=true", "-set", "auth.api_keys_file=" + path}, keys
}

// secFakeOpenAI is an OpenAI-compatible upstream on 127.0.0.1 that answers
// every chat completion with answer: one JSON object, or (for "stream":
// true) deltas of at most 7 bytes, so any secret is split across several.
// It returns the llm.base_url to use and counters of all and of streamed
// calls.
func secFakeOpenAI(t *testing.T, answer string) (baseURL string, calls, streamed *atomic.Int32) {
	t.Helper()
	calls, streamed = new(atomic.Int32), new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
			return
		}
		calls.Add(1)
		var req struct {
			Stream bool `json:"stream"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":{"message":"bad json","type":"invalid_request_error"}}`, http.StatusBadRequest)
			return
		}
		usage := map[string]int{"prompt_tokens": 11, "completion_tokens": 40, "total_tokens": 51}
		base := func(object string) map[string]any {
			return map[string]any{"id": "chatcmpl-sec", "object": object, "created": 1700000000, "model": "gpt-4o-mini"}
		}
		if !req.Stream {
			body := base("chat.completion")
			body["choices"] = []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": answer}}}
			body["usage"] = usage
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(body)
			return
		}
		streamed.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := func(choices []any, u any) {
			c := base("chat.completion.chunk")
			c["choices"] = choices
			c["usage"] = u
			b, _ := json.Marshal(c)
			_, _ = w.Write([]byte("data: " + string(b) + "\n\n"))
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		chunk([]any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": ""}, "finish_reason": nil}}, nil)
		for rest := answer; rest != ""; {
			n := min(7, len(rest))
			chunk([]any{map[string]any{"index": 0, "delta": map[string]any{"content": rest[:n]}, "finish_reason": nil}}, nil)
			rest = rest[n:]
		}
		chunk([]any{map[string]any{"index": 0, "delta": map[string]any{}, "finish_reason": "stop"}}, nil)
		chunk([]any{}, usage)
		_, _ = w.Write([]byte("data: [DONE]\n\n"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1", calls, streamed
}

// secSSE is one Server-Sent Event of a /chat stream.
type secSSE struct {
	Event, Data string
}

// secStreamChat posts a streaming /chat and returns the raw body and its
// events; it fails the test unless the answer is a 200 event stream.
func secStreamChat(t *testing.T, p *agentProc, user, session, message string) (raw []byte, events []secSSE) {
	t.Helper()
	body := chatBody(user, session, message)
	body["stream"] = true
	r := doHTTP(t, nil, http.MethodPost, p.API+"/chat", nil, body)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("streaming POST /chat = %d %q %s; want 200 text/event-stream", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var cur secSSE
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Event != "" || len(data) > 0 {
				cur.Data = strings.Join(data, "\n")
				events = append(events, cur)
			}
			cur, data = secSSE{}, nil
		case strings.HasPrefix(line, "event:"):
			cur.Event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read stream: %v", err)
	}
	return r.Body, events
}
