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
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// secResp is one HTTP answer.
type secResp struct {
	Status int
	Header http.Header
	Body   []byte
}

// secDo sends body (nil: none; a string is sent verbatim, anything else as
// JSON) with header and returns the whole answer.
func secDo(t *testing.T, method, url string, header http.Header, body any) secResp {
	t.Helper()
	return secResp(doHTTP(t, nil, method, url, header, body))
}

// secHeader builds a header from name, value pairs.
func secHeader(kv ...string) http.Header { return headerOf(kv...) }

// secBearer is an Authorization: Bearer key header plus name, value pairs.
func secBearer(key string, kv ...string) http.Header { return bearer(key, kv...) }

// secChatBody is a /chat request body.
func secChatBody(user, session, message string) map[string]any {
	return chatBody(user, session, message)
}

// secChat is POST /chat on p's API listener.
func secChat(t *testing.T, p *agentProc, header http.Header, user, session, message string) secResp {
	t.Helper()
	return secDo(t, http.MethodPost, p.API+"/chat", header, secChatBody(user, session, message))
}

// secErrType is the error.type of an error answer ("" if none).
func secErrType(r secResp) string {
	var e struct {
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Type
}

// secWant checks the status and, for an error, the error type.
func secWant(t *testing.T, what string, r secResp, status int, errType string) {
	t.Helper()
	if r.Status != status || secErrType(r) != errType {
		t.Errorf("%s = %d %s; want %d %q", what, r.Status, bytes.TrimSpace(r.Body), status, errType)
	}
}

// secWantOK checks a 200 answer and fails the test at once otherwise.
func secWantOK(t *testing.T, what string, r secResp) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%s = %d %s; want 200", what, r.Status, bytes.TrimSpace(r.Body))
	}
}

// secIncident is a security incident as GET /security/incidents shows it.
type secIncident struct {
	ID                string            `json:"id"`
	Timestamp         time.Time         `json:"timestamp"`
	IncidentType      string            `json:"incident_type"`
	ThreatLevel       string            `json:"threat_level"`
	Status            string            `json:"status"`
	Source            string            `json:"source"`
	Description       string            `json:"description"`
	AffectedResources []string          `json:"affected_resources"`
	RelatedEvents     []string          `json:"related_events"`
	Metadata          map[string]string `json:"metadata"`
	ActionTaken       string            `json:"action_taken"`
}

// secIncidents is GET /security/incidents?query with header.
func secIncidents(t *testing.T, p *agentProc, header http.Header, query string) []secIncident {
	t.Helper()
	r := secDo(t, http.MethodGet, p.Admin+"/security/incidents?"+query, header, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /security/incidents?%s = %d %s; want 200", query, r.Status, r.Body)
	}
	var out struct {
		Incidents *[]secIncident `json:"incidents"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil || out.Incidents == nil {
		t.Fatalf("GET /security/incidents?%s body %s: want {\"incidents\": [...]} (%v)", query, r.Body, err)
	}
	return *out.Incidents
}

// secOne returns the only incident of typ, failing the test when there is
// not exactly one.
func secOne(t *testing.T, p *agentProc, header http.Header, typ string) secIncident {
	t.Helper()
	incs := secIncidents(t, p, header, "type="+typ)
	if len(incs) != 1 {
		t.Fatalf("%s incidents = %s; want exactly one", typ, secDescribe(incs))
	}
	return incs[0]
}

// secDescribe lists incidents as type/level/source(count) for messages.
func secDescribe(incs []secIncident) string {
	parts := []string{}
	for _, inc := range incs {
		parts = append(parts, inc.IncidentType+"/"+inc.ThreatLevel+"/"+inc.Source+"(count "+inc.Metadata["count"]+")")
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// secWantIncident checks an incident's type, level and source ("" skips
// the source) and that action_taken says what the request path did
// (substring; "" skips).
func secWantIncident(t *testing.T, inc secIncident, typ, level, source, action string) {
	t.Helper()
	if inc.IncidentType != typ || inc.ThreatLevel != level || (source != "" && inc.Source != source) ||
		!strings.Contains(inc.ActionTaken, action) || inc.Status != "open" || inc.ID == "" || inc.Timestamp.IsZero() {
		t.Errorf("incident %+v; want an open %s %s incident from %q, action_taken containing %q", inc, level, typ, source, action)
	}
}

// secAuditEvent is an audit record as these tests read it.
type secAuditEvent = auditRecord

// secAudit is GET /audit?query with header.
func secAudit(t *testing.T, p *agentProc, header http.Header, query string) []secAuditEvent {
	t.Helper()
	return fetchAudit(t, p, header, query)
}

var secMetricRE = regexp.MustCompile(`^agent_security_incidents_total\{([^}]*)\} (\S+)$`)
var secLabelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// secIncidentCounts scrapes /metrics on the admin listener and returns
// agent_security_incidents_total by "type/level".
func secIncidentCounts(t *testing.T, p *agentProc) map[string]float64 {
	t.Helper()
	r := secDo(t, http.MethodGet, p.Admin+"/metrics", nil, nil)
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
func secCheckRecorded(t *testing.T, p *agentProc, admin http.Header, inc secIncident) {
	t.Helper()
	counts := secIncidentCounts(t, p)
	if key := inc.IncidentType + "/" + inc.ThreatLevel; counts[key] < 1 {
		t.Errorf("agent_security_incidents_total{type=%q,level=%q} is %v (all: %v); want >= 1 for incident %s",
			inc.IncidentType, inc.ThreatLevel, counts[key], counts, inc.ID)
	}
	events := secAudit(t, p, admin, "event_type=security&limit=1000")
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

// secKeygen runs `production-agent keygen` and returns the key (line 1)
// and the keys-file line (line 2).
func secKeygen(t *testing.T, user, role string) (key, line string) {
	t.Helper()
	out, err := exec.Command(agentBinary, "keygen", "-user", user, "-role", role).Output()
	if err != nil {
		t.Fatalf("keygen -user %s -role %s: %v", user, role, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("keygen printed %q; want two lines", out)
	}
	return strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
}

// secKeys makes one key per "user:role" spec, writes the keys file and
// returns the -set arguments turning auth on with it, and the keys by user.
func secKeys(t *testing.T, specs ...string) (args []string, keys map[string]string) {
	t.Helper()
	keys = make(map[string]string)
	var lines []string
	for _, s := range specs {
		user, role, _ := strings.Cut(s, ":")
		k, line := secKeygen(t, user, role)
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
	body := secChatBody(user, session, message)
	body["stream"] = true
	r := secDo(t, http.MethodPost, p.API+"/chat", nil, body)
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
