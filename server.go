package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"
)

// newHTTPServer applies the timeouts every listener needs.
func newHTTPServer(h http.Handler, cfg *Config, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler: h,
		// Slow-loris defence: a client gets this long to send its headers.
		ReadHeaderTimeout: 10 * time.Second,
		// Bodies are at most max_body_bytes (64 KiB by default); a client
		// that needs longer than this to send them is not a client we want.
		ReadTimeout: 30 * time.Second,
		// A turn may take request_timeout_seconds; leave room to write the
		// answer (or the stream's last events) after it.
		WriteTimeout: seconds(cfg.Server.RequestTimeoutSeconds) + 10*time.Second,
		// Keep-alive connections from load balancers are reused, but idle
		// ones do not pile up.
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: cfg.Server.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// runServe runs the service until ctx ends or SIGINT/SIGTERM arrives, then
// drains (DESIGN §9).
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	go sharedDetector() // the longest step of start-up; newApp waits for it
	var cf configFlags
	if err := parseFlags("serve", args, stderr, cf.register); err != nil {
		return err
	}
	cfg, err := loadConfig(cf.path, getenv, cf.overrides)
	if err != nil {
		return err
	}
	logger, level := newLeveledLogger(stdout, cfg.Observability.TracingLevel)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	a, err := newApp(cfg, logger, time.Now)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			a.audit.Close()
		}
	}()
	apiLn, err := net.Listen("tcp", net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Server.Port)))
	if err != nil {
		return fmt.Errorf("listen api: %w", err)
	}
	defer apiLn.Close()
	api := newHTTPServer(a.apiHandler(), cfg, logger)
	if cfg.Server.TLSCertFile != "" {
		api.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	servers := []*http.Server{api}
	lns := []net.Listener{apiLn}
	attrs := []any{"api", apiLn.Addr().String(), "provider", a.provider.Name(), "version", version}
	if cfg.Observability.MetricsEnabled {
		adminLn, err := net.Listen("tcp", net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Observability.MetricsPort)))
		if err != nil {
			return fmt.Errorf("listen admin: %w", err)
		}
		defer adminLn.Close()
		servers = append(servers, newHTTPServer(a.adminHandler(), cfg, logger))
		lns = append(lns, adminLn)
		attrs = append(attrs, "admin", adminLn.Addr().String())
	}

	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() {
			var err error
			if i == 0 && cfg.Server.TLSCertFile != "" {
				err = srv.ServeTLS(lns[i], cfg.Server.TLSCertFile, cfg.Server.TLSKeyFile)
			} else {
				err = srv.Serve(lns[i])
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	// Start-up leaves garbage behind (the detector's build allocates ~25 MB
	// and keeps ~5 MB): collect it and hand the pages back to the OS now,
	// off the serving path, instead of holding them until the heap grows.
	go debug.FreeOSMemory()
	rl := newReloader(a, getenv, cf.overrides, level)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	janitorDone := make(chan struct{}, 2)
	janitorCtx, stopJanitor := context.WithCancel(context.Background())
	go func() {
		defer func() { janitorDone <- struct{}{} }()
		rl.watch(janitorCtx)
	}()
	go func() {
		defer func() { janitorDone <- struct{}{} }()
		// Idle sessions are also dropped lazily on access; the sweep only
		// bounds memory held by sessions nobody comes back to.
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-janitorCtx.Done():
				return
			case <-t.C:
				a.sessions.Sweep()
			case <-hup:
				rl.reload(janitorCtx)
			}
		}
	}()
	a.recordSystem(ctx, AuditEvent{EventType: EventConfiguration, Severity: SeverityInfo, Action: "configuration.load",
		Resource: "config", Success: true, Metadata: map[string]string{
			"path": cfg.Path, "sha256": cfg.FileSHA256, "provider": a.provider.Name(), "model": a.model,
			"auth_enabled": strconv.FormatBool(cfg.Auth.Enabled), "audit_backend": cfg.Audit.Backend,
		}})
	a.recordSystem(ctx, AuditEvent{EventType: EventConfiguration, Severity: SeverityInfo, Action: "service.start",
		Resource: "service", Success: true, Metadata: map[string]string{"version": version, "api": apiLn.Addr().String()}})
	a.health.SetReady()
	logger.Info("listening", attrs...)

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutdown signal received; draining")
	case serveErr = <-errc:
		logger.Error("listener failed; shutting down", "error", serveErr.Error())
	}
	// From here a second SIGINT/SIGTERM gets the default action: exit at once.
	stop()
	a.health.SetShuttingDown()
	if d := seconds(cfg.Server.ShutdownDelaySeconds); d > 0 && serveErr == nil {
		// Give load balancers time to see readiness fail before we stop
		// accepting connections.
		time.Sleep(d)
	}
	// A fresh context: the one we were given is already cancelled.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), seconds(cfg.Server.ShutdownTimeoutSeconds))
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			logger.Warn("drain timed out; closing remaining connections", "error", err.Error())
			srv.Close()
		}
	}
	stopJanitor()
	<-janitorDone
	<-janitorDone
	a.close(shutdownCtx)
	closed = true
	logger.Info("stopped")
	return serveErr
}

// healthcheckClient probes the local process. With TLS on, the default URL
// is https://127.0.0.1, which the serving certificate will not name; the
// probe carries no data and only reads a status, so verification is off.
func healthcheckClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // local liveness probe
	}}
}
