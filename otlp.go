package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Exporter defaults, those of the OpenTelemetry SDK's batch span processor
// (OTEL_BSP_*), which operators already know how to size for.
const (
	otlpQueueSize     = 2048
	otlpBatchSize     = 512
	otlpFlushInterval = 5 * time.Second
	// otlpTimeout bounds one POST, as OTEL_EXPORTER_OTLP_TIMEOUT does.
	otlpTimeout = 10 * time.Second
	// otlpRetryDelay is the wait before the single retry of a failed batch:
	// long enough for a collector restart's connection refusals to pass,
	// short enough that the queue behind it rarely fills.
	otlpRetryDelay = time.Second
	// otlpMaxResponse bounds how much of a collector's answer is read.
	otlpMaxResponse = 64 << 10
)

// otlpExporter sends ended spans to an OTLP/HTTP collector as JSON
// (POST {endpoint}/v1/traces) from one goroutine. enqueue never blocks:
// when the bounded queue is full the span is dropped and counted. Spans
// go out in batches of batchSize, or every interval, whichever comes
// first; a failed batch is retried once, then dropped and counted.
type otlpExporter struct {
	url       string
	client    *http.Client
	logger    *slog.Logger
	onDrop    func(reason string, n int)
	batchSize int
	interval  time.Duration
	resource  otlpResource
	scope     otlpScope

	queue   chan *Span
	flushc  chan chan struct{}
	stopc   chan context.Context
	done    chan struct{} // closed when the goroutine has returned
	stopped atomic.Bool
	once    sync.Once
	ctx     context.Context // exports; cancelled when Shutdown gives up
	cancel  context.CancelFunc
}

func newOTLPExporter(s TracerSettings) *otlpExporter {
	e := &otlpExporter{
		url:       strings.TrimRight(s.Endpoint, "/") + "/v1/traces",
		client:    s.Client,
		logger:    s.Logger,
		onDrop:    s.OnDrop,
		batchSize: s.BatchSize,
		interval:  s.FlushInterval,
		resource: otlpResource{Attributes: []otlpKeyValue{
			otlpAttr("service.name", s.ServiceName),
			otlpAttr("service.version", s.ServiceVersion),
			otlpAttr("telemetry.sdk.language", "go"),
		}},
		scope:  otlpScope{Name: "production-agent", Version: s.ServiceVersion},
		flushc: make(chan chan struct{}),
		stopc:  make(chan context.Context, 1), // Shutdown never waits to be heard
		done:   make(chan struct{}),
	}
	queueSize := s.QueueSize
	if queueSize <= 0 {
		queueSize = otlpQueueSize
	}
	e.queue = make(chan *Span, queueSize)
	if e.batchSize <= 0 {
		e.batchSize = otlpBatchSize
	}
	if e.interval <= 0 {
		e.interval = otlpFlushInterval
	}
	if e.client == nil {
		e.client = &http.Client{Timeout: otlpTimeout}
	}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	if e.onDrop == nil {
		e.onDrop = func(string, int) {}
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	go e.run()
	return e
}

// enqueue hands an ended span to the exporter without ever blocking.
func (e *otlpExporter) enqueue(s *Span) {
	if e.stopped.Load() {
		e.onDrop("queue_full", 1)
		return
	}
	select {
	case e.queue <- s:
	default:
		e.onDrop("queue_full", 1)
	}
}

func (e *otlpExporter) flush(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case e.flushc <- reply:
	case <-e.done:
		return errExporterStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *otlpExporter) shutdown(ctx context.Context) error {
	e.once.Do(func() {
		e.stopped.Store(true)
		e.stopc <- ctx
	})
	select {
	case <-e.done:
	case <-ctx.Done():
		e.cancel() // abandon the export in flight; what is left is dropped
		<-e.done
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("flush spans: %w", err)
	}
	return nil
}

func (e *otlpExporter) run() {
	defer close(e.done)
	defer e.cancel()
	ticker := time.NewTicker(e.interval)
	defer ticker.Stop()
	batch := make([]*Span, 0, e.batchSize)
	for {
		select {
		case s := <-e.queue:
			batch = append(batch, s)
			if len(batch) >= e.batchSize {
				e.export(e.ctx, batch)
				batch = batch[:0]
			}
		case <-ticker.C:
			if len(batch) > 0 {
				e.export(e.ctx, batch)
				batch = batch[:0]
			}
		case reply := <-e.flushc:
			batch = e.drain(e.ctx, batch)
			close(reply)
		case ctx := <-e.stopc:
			// Shutdown's deadline, and its give-up, both end the last exports.
			ctx, cancel := context.WithCancel(ctx)
			stop := context.AfterFunc(e.ctx, cancel)
			e.drain(ctx, batch)
			stop()
			cancel()
			return
		}
	}
}

// drain exports batch and everything queued now, in batches, and returns
// the emptied batch for reuse.
func (e *otlpExporter) drain(ctx context.Context, batch []*Span) []*Span {
	for {
		select {
		case s := <-e.queue:
			batch = append(batch, s)
			if len(batch) < e.batchSize {
				continue
			}
		default:
		}
		if len(batch) > 0 {
			e.export(ctx, batch)
		}
		full := len(batch) >= e.batchSize
		batch = batch[:0]
		if !full {
			return batch
		}
	}
}

// export sends one batch, retrying once after otlpRetryDelay when the
// failure may pass (transport error, 429, 502, 503, 504); otherwise the
// batch is dropped, counted and logged.
func (e *otlpExporter) export(ctx context.Context, spans []*Span) {
	body, err := json.Marshal(e.request(spans))
	if err == nil {
		err = e.post(ctx, body)
		if otlpRetryable(err) && ctx.Err() == nil {
			t := time.NewTimer(otlpRetryDelay)
			select {
			case <-t.C:
				err = e.post(ctx, body)
			case <-ctx.Done():
				t.Stop()
				err = fmt.Errorf("%w (retry abandoned: %w)", err, ctx.Err())
			}
		}
	}
	var pe *otlpPartialError
	switch {
	case errors.As(err, &pe):
		e.onDrop("export_failed", pe.rejected)
		e.logger.Warn("span collector rejected spans", "spans", pe.rejected, "error", pe.message)
	case err != nil:
		e.onDrop("export_failed", len(spans))
		e.logger.Warn("span export failed; spans dropped", "spans", len(spans), "error", err.Error())
	}
}

// otlpRetryable reports whether a failed export may succeed if repeated:
// a transport error or a retryable status, not a rejection.
func otlpRetryable(err error) bool {
	var he *otlpHTTPError
	var pe *otlpPartialError
	switch {
	case err == nil, errors.As(err, &pe):
		return false
	case errors.As(err, &he):
		return he.retryable()
	default:
		return true
	}
}

// otlpHTTPError is a collector's non-2xx answer.
type otlpHTTPError struct {
	status int
	body   string
}

func (e *otlpHTTPError) Error() string {
	return fmt.Sprintf("collector answered %d: %s", e.status, e.body)
}

// retryable follows the OTLP/HTTP specification's list.
func (e *otlpHTTPError) retryable() bool {
	switch e.status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// otlpPartialError is a 2xx answer that rejected some spans.
type otlpPartialError struct {
	rejected int
	message  string
}

func (e *otlpPartialError) Error() string {
	return fmt.Sprintf("collector rejected %d spans: %s", e.rejected, e.message)
}

func (e *otlpExporter) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("span export request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "production-agent/"+e.scope.Version)
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("span export: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, otlpMaxResponse))
	io.Copy(io.Discard, io.LimitReader(resp.Body, otlpMaxResponse))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &otlpHTTPError{status: resp.StatusCode, body: strings.TrimSpace(string(answer[:min(len(answer), 200)]))}
	}
	var ps struct {
		PartialSuccess struct {
			RejectedSpans json.Number `json:"rejectedSpans"`
			ErrorMessage  string      `json:"errorMessage"`
		} `json:"partialSuccess"`
	}
	if json.Unmarshal(answer, &ps) == nil {
		if n, _ := strconv.Atoi(ps.PartialSuccess.RejectedSpans.String()); n > 0 {
			return &otlpPartialError{rejected: n, message: ps.PartialSuccess.ErrorMessage}
		}
	}
	return nil
}

// The OTLP JSON encoding (opentelemetry-proto's ProtoJSON with OTLP's
// rules): lowerCamelCase field names, trace and span ids as hex strings,
// enums as integers, 64-bit integers as decimal strings.
type otlpExportRequest struct {
	ResourceSpans []otlpResourceSpans `json:"resourceSpans"`
}

type otlpResourceSpans struct {
	Resource   otlpResource     `json:"resource"`
	ScopeSpans []otlpScopeSpans `json:"scopeSpans"`
}

type otlpResource struct {
	Attributes []otlpKeyValue `json:"attributes"`
}

type otlpScopeSpans struct {
	Scope otlpScope  `json:"scope"`
	Spans []otlpSpan `json:"spans"`
}

type otlpScope struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

type otlpSpan struct {
	TraceID           string         `json:"traceId"`
	SpanID            string         `json:"spanId"`
	TraceState        string         `json:"traceState,omitempty"`
	ParentSpanID      string         `json:"parentSpanId,omitempty"`
	Flags             uint32         `json:"flags"`
	Name              string         `json:"name"`
	Kind              SpanKind       `json:"kind"`
	StartTimeUnixNano string         `json:"startTimeUnixNano"`
	EndTimeUnixNano   string         `json:"endTimeUnixNano"`
	Attributes        []otlpKeyValue `json:"attributes,omitempty"`
	Status            otlpStatus     `json:"status"`
}

type otlpStatus struct {
	Message string `json:"message,omitempty"`
	Code    int    `json:"code,omitempty"`
}

type otlpKeyValue struct {
	Key   string       `json:"key"`
	Value otlpAnyValue `json:"value"`
}

// otlpAnyValue has exactly one field set.
type otlpAnyValue struct {
	StringValue *string         `json:"stringValue,omitempty"`
	BoolValue   *bool           `json:"boolValue,omitempty"`
	IntValue    string          `json:"intValue,omitempty"`
	DoubleValue *float64        `json:"doubleValue,omitempty"`
	ArrayValue  *otlpArrayValue `json:"arrayValue,omitempty"`
}

type otlpArrayValue struct {
	Values []otlpAnyValue `json:"values"`
}

// Span flags (OTLP SpanFlags): the W3C trace flags in the low byte, then
// whether the parent's remoteness is known and whether it is remote.
const (
	otlpFlagHasIsRemote = 0x100
	otlpFlagIsRemote    = 0x200
)

func (e *otlpExporter) request(spans []*Span) otlpExportRequest {
	out := make([]otlpSpan, len(spans))
	for i, s := range spans {
		o := otlpSpan{
			TraceID: hex.EncodeToString(s.traceID[:]), SpanID: hex.EncodeToString(s.spanID[:]),
			TraceState: s.state, Flags: 0x01 | otlpFlagHasIsRemote, Name: s.name, Kind: s.kind,
			StartTimeUnixNano: strconv.FormatInt(s.start.UnixNano(), 10),
			EndTimeUnixNano:   strconv.FormatInt(s.end.UnixNano(), 10),
			Status:            otlpStatus{Code: s.status, Message: s.message},
		}
		if s.parentID != [8]byte{} {
			o.ParentSpanID = hex.EncodeToString(s.parentID[:])
		}
		if s.remote {
			o.Flags |= otlpFlagIsRemote
		}
		o.Attributes = make([]otlpKeyValue, len(s.attrs))
		for j, a := range s.attrs {
			o.Attributes[j] = otlpKeyValue{Key: a.key, Value: otlpValue(a.value)}
		}
		out[i] = o
	}
	return otlpExportRequest{ResourceSpans: []otlpResourceSpans{{
		Resource:   e.resource,
		ScopeSpans: []otlpScopeSpans{{Scope: e.scope, Spans: out}},
	}}}
}

func otlpAttr(key string, value any) otlpKeyValue {
	return otlpKeyValue{Key: key, Value: otlpValue(value)}
}

// otlpValue encodes the attribute types Span.SetAttr keeps.
func otlpValue(v any) otlpAnyValue {
	switch v := v.(type) {
	case string:
		return otlpAnyValue{StringValue: &v}
	case bool:
		return otlpAnyValue{BoolValue: &v}
	case int64:
		return otlpAnyValue{IntValue: strconv.FormatInt(v, 10)}
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			// encoding/json cannot write them; a string keeps the batch valid.
			s := strconv.FormatFloat(v, 'g', -1, 64)
			return otlpAnyValue{StringValue: &s}
		}
		return otlpAnyValue{DoubleValue: &v}
	case []string:
		vals := make([]otlpAnyValue, len(v))
		for i := range v {
			vals[i] = otlpAnyValue{StringValue: &v[i]}
		}
		return otlpAnyValue{ArrayValue: &otlpArrayValue{Values: vals}}
	default:
		s := fmt.Sprint(v)
		return otlpAnyValue{StringValue: &s}
	}
}
