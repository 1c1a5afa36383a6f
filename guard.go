package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// guards puts the resilience mechanisms of resilience.go on the request
// path, in the order RESILIENCE.md fixes, outer to inner:
//
//	retry → breaker → LLM bulkhead → per-attempt timeout → provider
//	tool bulkhead → tool timeout → tool
//
// and the token buckets in front of every /chat request. Each mechanism
// is nil when switched off in the configuration.
type guards struct {
	// The buckets are swapped whole when SIGHUP changes the rates.
	ipLimiter        atomic.Pointer[KeyedLimiter] // per client IP; nil when off
	principalLimiter atomic.Pointer[KeyedLimiter] // per principal (user id, or the authenticated subject)
	breaker          *Breaker
	llmBulkhead      *Bulkhead
	toolBulkhead     *Bulkhead
	retry            RetryPolicy
	metrics          *Metrics
	logger           *slog.Logger
	// onBreakerChange is called after every breaker transition, outside the
	// breaker's lock (audit hooks in here).
	onBreakerChange func(from, to BreakerState)
}

// maxLimiterKeys bounds each bucket map: 100k idle buckets are ~10 MB, and
// a flood of new keys beyond it evicts old ones instead of growing memory.
const maxLimiterKeys = 100_000

func newGuards(cfg *Config, provider string, metrics *Metrics, logger *slog.Logger, now func() time.Time) *guards {
	rc := cfg.Resilience
	g := &guards{metrics: metrics, logger: logger.With("component", "resilience")}
	g.setLimits(rc, now)
	if rc.CircuitBreakerEnabled {
		g.breaker = NewBreaker(BreakerSettings{
			Name:             provider,
			FailureThreshold: rc.CircuitBreakerFailureThreshold,
			SuccessThreshold: rc.CircuitBreakerSuccessThreshold,
			OpenTimeout:      seconds(rc.CircuitBreakerTimeoutSeconds),
			Now:              now,
			OnStateChange: func(name string, from, to BreakerState) {
				metrics.breakerTransitions.WithLabelValues(name, from.String(), to.String()).Inc()
				g.logger.Warn("circuit breaker state change", "breaker", name, "from", from.String(), "to", to.String())
				if g.onBreakerChange != nil {
					g.onBreakerChange(from, to)
				}
			},
		})
	}
	if rc.BulkheadEnabled {
		qt := seconds(rc.BulkheadQueueTimeoutSeconds)
		g.toolBulkhead = NewBulkhead("tools", rc.BulkheadMaxConcurrent, rc.BulkheadMaxQueued, qt)
		g.llmBulkhead = NewBulkhead("llm", rc.LLMMaxConcurrent, rc.LLMMaxQueued, qt)
	}
	if metrics != nil {
		// Zero series from the start, so that the metric families exist
		// before the first trip or rejection and increase() sees it.
		if g.breaker != nil {
			for _, t := range [][2]BreakerState{{StateClosed, StateOpen}, {StateOpen, StateHalfOpen},
				{StateHalfOpen, StateClosed}, {StateHalfOpen, StateOpen}} {
				metrics.breakerTransitions.WithLabelValues(provider, t[0].String(), t[1].String())
			}
		}
		for _, b := range []*Bulkhead{g.toolBulkhead, g.llmBulkhead} {
			if b != nil {
				for _, reason := range []string{"queue_full", "queue_timeout"} {
					metrics.bulkheadRejected.WithLabelValues(b.Name(), reason)
				}
			}
		}
	}
	g.retry = RetryPolicy{
		MaxAttempts: cfg.LLM.MaxRetries + 1,
		// Anthropic's and OpenAI's SDKs start at 0.5 s and cap at 8 s.
		BaseDelay: 500 * time.Millisecond, MaxDelay: 8 * time.Second, Factor: 2, Jitter: 0.25,
		Rand: rand.Float64,
	}
	metrics.reg.MustRegister(g)
	return g
}

// setLimits (re)builds the token buckets from rc. Buckets restart full.
func (g *guards) setLimits(rc ResilienceConfig, now func() time.Time) {
	var p, ip *KeyedLimiter
	if rc.RateLimitEnabled {
		p = NewKeyedLimiter(Limit(rc.RateLimitRequestsPerSecond), rc.RateLimitBurst, maxLimiterKeys, now)
	}
	if rc.IPRateLimitEnabled {
		ip = NewKeyedLimiter(Limit(rc.IPRateLimitRequestsPerSecond), rc.IPRateLimitBurst, maxLimiterKeys, now)
	}
	g.principalLimiter.Store(p)
	g.ipLimiter.Store(ip)
}

// Describe implements prometheus.Collector for the gauges read at scrape
// time (breaker state, bulkhead occupancy), so the hot path pays nothing.
func (g *guards) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(g, ch)
}

var (
	breakerStateDesc = prometheus.NewDesc("agent_circuit_breaker_state",
		"1 for the breaker's current state, 0 for the others.", []string{"breaker", "state"}, nil)
	bulkheadInFlightDesc = prometheus.NewDesc("agent_bulkhead_in_flight",
		"Calls holding a bulkhead slot.", []string{"bulkhead"}, nil)
	bulkheadQueuedDesc = prometheus.NewDesc("agent_bulkhead_queued",
		"Calls waiting for a bulkhead slot.", []string{"bulkhead"}, nil)
)

// Collect implements prometheus.Collector.
func (g *guards) Collect(ch chan<- prometheus.Metric) {
	if g.breaker != nil {
		cur := g.breaker.State()
		for _, s := range []BreakerState{StateClosed, StateHalfOpen, StateOpen} {
			v := 0.0
			if s == cur {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(breakerStateDesc, prometheus.GaugeValue, v, g.breakerName(), s.String())
		}
	}
	for _, b := range []*Bulkhead{g.llmBulkhead, g.toolBulkhead} {
		if b != nil {
			ch <- prometheus.MustNewConstMetric(bulkheadInFlightDesc, prometheus.GaugeValue, float64(b.InFlight()), b.Name())
			ch <- prometheus.MustNewConstMetric(bulkheadQueuedDesc, prometheus.GaugeValue, float64(b.Queued()), b.Name())
		}
	}
}

func (g *guards) breakerName() string { return g.breaker.Name() }

// llmHealth is the llm component of /health: degraded while the breaker
// is not closed (the probe never calls the model itself).
func (g *guards) llmHealth(desc string) componentStatus {
	if g.breaker == nil {
		return componentStatus{Status: "healthy", Message: desc + "; circuit breaker disabled"}
	}
	switch st := g.breaker.State(); st {
	case StateOpen:
		return componentStatus{Status: "degraded", Message: fmt.Sprintf("%s; circuit breaker open for %s more",
			desc, g.breaker.RemainingOpen().Round(time.Second))}
	case StateHalfOpen:
		return componentStatus{Status: "degraded", Message: desc + "; circuit breaker half-open, probing"}
	default:
		return componentStatus{Status: "healthy", Message: desc + "; circuit breaker closed"}
	}
}

// callLLM wraps one model call (the attempt function) in retry, breaker and
// bulkhead. A stream that already sent text to the client is not retried:
// the client would see the answer twice.
func (g *guards) callLLM(attempt func(context.Context, *LLMRequest, func(StreamEvent) error) (*LLMResponse, error)) func(context.Context, *LLMRequest, func(StreamEvent) error) (*LLMResponse, error) {
	return func(ctx context.Context, req *LLMRequest, onEvent func(StreamEvent) error) (*LLMResponse, error) {
		emitted := false
		wrapped := onEvent
		if onEvent != nil {
			wrapped = func(ev StreamEvent) error {
				emitted = true
				return onEvent(ev)
			}
		}
		retryable := func(err error) bool { return !emitted && retryableDefault(err) }
		resp, _, err := retryDo(ctx, g.retry, retryable, func(ctx context.Context, n int) (*LLMResponse, error) {
			var ticket Ticket
			if g.breaker != nil {
				var err error
				if ticket, err = g.breaker.AllowTicket(); err != nil {
					return nil, err
				}
			}
			done := func(err error) {
				if g.breaker != nil {
					g.breaker.Done(ticket, err)
				}
			}
			if g.llmBulkhead != nil {
				release, err := g.llmBulkhead.Acquire(ctx)
				if err != nil {
					g.countRejection(err)
					done(err)
					return nil, err
				}
				defer release()
			}
			resp, err := attempt(ctx, req, wrapped)
			done(err)
			return resp, err
		})
		return resp, err
	}
}

// runTool wraps a tool call in the tool bulkhead. A full bulkhead or queue
// timeout fails the whole turn with 503 overloaded.
func (g *guards) runTool(run func(context.Context, ToolCall) (string, error)) func(context.Context, ToolCall) (string, error) {
	if g.toolBulkhead == nil {
		return run
	}
	return func(ctx context.Context, call ToolCall) (string, error) {
		release, err := g.toolBulkhead.Acquire(ctx)
		if err != nil {
			g.countRejection(err)
			if errors.Is(err, ErrFull) {
				return "", fmt.Errorf("%w: %w", ErrOverloaded, err)
			}
			return "", err
		}
		defer release()
		return run(ctx, call)
	}
}

func (g *guards) countRejection(err error) {
	var fe *FullError
	if errors.As(err, &fe) {
		g.metrics.bulkheadRejected.WithLabelValues(fe.Name, fe.Reason).Inc()
	}
}
