// Command interop is a tiny OpAMP agent built on the opamp-go client library. The
// opamp-gitops test suite runs it against its own server to prove that the real Go client
// connects, reports, receives a remote config and reports it APPLIED, over WebSocket and
// plain HTTP.
//
// Every notable event is printed to stdout as one JSON object per line; diagnostics from the
// client library go to stderr. Exit status: 0 once -configs remote configs were applied and
// reported APPLIED (with -bridge: APPLIED or FAILED), 1 on timeout or when the client cannot
// start, 2 on bad flags. With -bridge it plays the Operator OpAMP Bridge (bridge.go).
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/open-telemetry/opamp-go/client"
	"github.com/open-telemetry/opamp-go/client/types"
	"github.com/open-telemetry/opamp-go/protobufs"
)

// events writes the JSON lines the test reads; one lock keeps lines whole.
type events struct{ mu sync.Mutex }

func (e *events) emit(fields map[string]any) {
	line, err := json.Marshal(fields)
	if err != nil {
		line = []byte(fmt.Sprintf(`{"event":"error","error":%q}`, err.Error()))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = os.Stdout.Write(append(line, '\n'))
}

// stderrLogger implements types.Logger; debug lines only with -verbose.
type stderrLogger struct{ verbose bool }

func (l stderrLogger) Debugf(_ context.Context, format string, v ...any) {
	if l.verbose {
		fmt.Fprintf(os.Stderr, "debug: "+format+"\n", v...)
	}
}

func (l stderrLogger) Errorf(_ context.Context, format string, v ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", v...)
}

// agent holds what this fake agent is running: the config files it last applied.
type agent struct {
	mu        sync.Mutex
	effective map[string]*protobufs.AgentConfigFile
}

func (a *agent) effectiveConfig(context.Context) (*protobufs.EffectiveConfig, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	files := make(map[string]*protobufs.AgentConfigFile, len(a.effective))
	for name, f := range a.effective {
		files[name] = &protobufs.AgentConfigFile{Body: f.Body, ContentType: f.ContentType}
	}
	return &protobufs.EffectiveConfig{ConfigMap: &protobufs.AgentConfigMap{ConfigMap: files}}, nil
}

func (a *agent) apply(cfg *protobufs.AgentConfigMap) {
	files := map[string]*protobufs.AgentConfigFile{}
	for name, f := range cfg.GetConfigMap() {
		files[name] = &protobufs.AgentConfigFile{Body: f.GetBody(), ContentType: f.GetContentType()}
	}
	a.mu.Lock()
	a.effective = files
	a.mu.Unlock()
}

func stringAttr(key, value string) *protobufs.KeyValue {
	return &protobufs.KeyValue{
		Key:   key,
		Value: &protobufs.AnyValue{Value: &protobufs.AnyValue_StringValue{StringValue: value}},
	}
}

// serverURL adapts the scheme to the transport, so one URL works for both.
func serverURL(raw, transport string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	var secure bool
	switch u.Scheme {
	case "http", "ws":
	case "https", "wss":
		secure = true
	default:
		return "", fmt.Errorf("unsupported URL scheme %q", u.Scheme)
	}
	if transport == "ws" {
		u.Scheme = "ws"
	} else {
		u.Scheme = "http"
	}
	if secure {
		u.Scheme += "s"
	}
	return u.String(), nil
}

func main() {
	rawURL := flag.String("url", "http://127.0.0.1:4320/v1/opamp", "OpAMP server endpoint (http[s]:// or ws[s]://)")
	transport := flag.String("transport", "ws", "transport: ws or http")
	token := flag.String("token", "", "bearer token sent in the Authorization header")
	timeout := flag.Duration("timeout", 30*time.Second, "give up (exit 1) when APPLIED was not reported within this time")
	verbose := flag.Bool("verbose", false, "print the client library's debug messages to stderr")
	compress := flag.Bool("compress", false, "enable compression (gzip bodies over HTTP, permessage-deflate if the server offers it over WebSocket)")
	heartbeat := flag.Duration("heartbeat", 0, "heartbeat interval, also the HTTP polling interval (0: the library's default, 30s)")
	configs := flag.Int("configs", 1, "exit 0 once this many remote configs (distinct hashes) were applied")
	bridge := flag.String("bridge", "", "play the Operator OpAMP Bridge with this name: check every entry as it does (bridge.go) and report APPLIED or FAILED; a FAILED config counts towards -configs")
	csr := flag.Bool("csr", false, "get a client certificate over OpAMP (csr.go): bootstrap with -cert/-key/-token, send a CSR, reconnect with the issued certificate, run until it is refused")
	caFile := flag.String("ca", "", "with -csr: PEM CA that verifies the server")
	certFile := flag.String("cert", "", "with -csr: bootstrap client certificate (PEM)")
	keyFile := flag.String("key", "", "with -csr: its private key (PEM)")
	csrCN := flag.String("csr-cn", "", "with -csr: subject CN asked for (default: the agent's own uid)")
	role := flag.String("role", "edge", "with -csr: the host.role attribute reported")
	flag.Parse()
	if *csr {
		os.Exit(runCSR(csrOptions{
			options: options{url: *rawURL, transport: *transport, token: *token, timeout: *timeout, verbose: *verbose, heartbeat: *heartbeat},
			ca:      *caFile, cert: *certFile, key: *keyFile, csrCN: *csrCN, role: *role,
		}))
	}
	if *configs < 1 || *heartbeat < 0 {
		fmt.Fprintln(os.Stderr, "-configs must be ≥ 1 and -heartbeat ≥ 0")
		os.Exit(2)
	}
	os.Exit(run(options{
		url: *rawURL, transport: *transport, token: *token, timeout: *timeout, verbose: *verbose,
		compress: *compress, heartbeat: *heartbeat, configs: *configs, bridge: *bridge,
	}))
}

type options struct {
	url, transport, token string
	bridge                string
	timeout, heartbeat    time.Duration
	verbose, compress     bool
	configs               int
}

func run(o options) int {
	out := &events{}
	logger := stderrLogger{verbose: o.verbose}
	transport := o.transport

	endpoint, err := serverURL(o.url, transport)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad -url: %v\n", err)
		return 2
	}
	var opamp client.OpAMPClient
	switch transport {
	case "ws":
		opamp = client.NewWebSocket(logger)
	case "http":
		opamp = client.NewHTTP(logger)
	default:
		fmt.Fprintf(os.Stderr, "bad -transport %q: want ws or http\n", transport)
		return 2
	}

	uid, err := uuid.NewV7()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot make an instance uid: %v\n", err)
		return 1
	}
	out.emit(map[string]any{"event": "start", "instanceUid": uid.String(), "transport": transport, "url": endpoint})

	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	if err := opamp.SetAgentDescription(&protobufs.AgentDescription{
		IdentifyingAttributes: []*protobufs.KeyValue{
			stringAttr("service.name", "interop-go"),
			stringAttr("service.instance.id", uid.String()),
		},
		NonIdentifyingAttributes: []*protobufs.KeyValue{
			stringAttr("host.name", host),
			stringAttr("os.type", runtime.GOOS),
		},
	}); err != nil {
		fmt.Fprintf(os.Stderr, "SetAgentDescription: %v\n", err)
		return 1
	}
	// Health first: SetCapabilities refuses ReportsHealth while no health is set.
	started := uint64(time.Now().UnixNano())
	if err := opamp.SetHealth(&protobufs.ComponentHealth{
		Healthy:            true,
		StartTimeUnixNano:  started,
		Status:             "running",
		StatusTimeUnixNano: started,
	}); err != nil {
		fmt.Fprintf(os.Stderr, "SetHealth: %v\n", err)
		return 1
	}

	caps := protobufs.AgentCapabilities_AgentCapabilities_ReportsStatus |
		protobufs.AgentCapabilities_AgentCapabilities_AcceptsRemoteConfig |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsEffectiveConfig |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsRemoteConfig |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsHealth |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsHeartbeat
	if err := opamp.SetCapabilities(&caps); err != nil {
		fmt.Fprintf(os.Stderr, "SetCapabilities: %v\n", err)
		return 1
	}
	a := &agent{effective: map[string]*protobufs.AgentConfigFile{}}
	// Hashes applied so far, in order; `done` is closed once there are o.configs of them.
	var appliedHashes []string
	done := make(chan struct{})
	var connectOnce sync.Once
	// One remote config is applied at a time, off the client's receive goroutine.
	var applying sync.Mutex

	applyConfig := func(ctx context.Context, rc *protobufs.AgentRemoteConfig) {
		applying.Lock()
		defer applying.Unlock()
		hash := rc.GetConfigHash()
		setStatus := func(status protobufs.RemoteConfigStatuses) {
			if err := opamp.SetRemoteConfigStatus(&protobufs.RemoteConfigStatus{
				LastRemoteConfigHash: hash,
				Status:               status,
			}); err != nil {
				logger.Errorf(ctx, "SetRemoteConfigStatus(%v): %v", status, err)
			}
		}
		if o.bridge != "" {
			// The bridge applies what it can and reports FAILED with every entry's error.
			if err := bridgeCheck(rc.GetConfig(), o.bridge); err != nil {
				if err := opamp.SetRemoteConfigStatus(&protobufs.RemoteConfigStatus{
					LastRemoteConfigHash: hash,
					Status:               protobufs.RemoteConfigStatuses_RemoteConfigStatuses_FAILED,
					ErrorMessage:         err.Error(),
				}); err != nil {
					logger.Errorf(ctx, "SetRemoteConfigStatus(FAILED): %v", err)
				}
				out.emit(map[string]any{"event": "failed", "hash": hex.EncodeToString(hash), "error": err.Error()})
			} else {
				a.mu.Lock()
				a.effective = bridgeEffective(rc.GetConfig())
				a.mu.Unlock()
				if err := opamp.UpdateEffectiveConfig(ctx); err != nil {
					logger.Errorf(ctx, "UpdateEffectiveConfig: %v", err)
				}
				setStatus(protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED)
				out.emit(map[string]any{"event": "applied", "hash": hex.EncodeToString(hash)})
			}
		} else {
			setStatus(protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLYING)
			out.emit(map[string]any{"event": "applying", "hash": hex.EncodeToString(hash)})
			// Let APPLYING go out as its own report before the config "takes effect".
			time.Sleep(200 * time.Millisecond)
			a.apply(rc.GetConfig())
			if err := opamp.UpdateEffectiveConfig(ctx); err != nil {
				logger.Errorf(ctx, "UpdateEffectiveConfig: %v", err)
			}
			setStatus(protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED)
			out.emit(map[string]any{"event": "applied", "hash": hex.EncodeToString(hash)})
		}
		if !slices.Contains(appliedHashes, hex.EncodeToString(hash)) {
			appliedHashes = append(appliedHashes, hex.EncodeToString(hash))
			if len(appliedHashes) == o.configs {
				close(done)
			}
		}
	}

	settings := types.StartSettings{
		OpAMPServerURL:    endpoint,
		InstanceUid:       types.InstanceUid(uid),
		EnableCompression: o.compress,
		Callbacks: types.Callbacks{
			OnConnect: func(context.Context) {
				// The HTTP client calls this on every 200 response; report the first.
				connectOnce.Do(func() { out.emit(map[string]any{"event": "connected"}) })
			},
			OnConnectFailed: func(_ context.Context, err error) {
				out.emit(map[string]any{"event": "connect_failed", "error": err.Error()})
			},
			OnError: func(_ context.Context, e *protobufs.ServerErrorResponse) {
				out.emit(map[string]any{"event": "server_error", "type": e.GetType().String(), "error": e.GetErrorMessage()})
			},
			OnMessage: func(ctx context.Context, msg *types.MessageData) {
				rc := msg.RemoteConfig
				if rc == nil {
					return
				}
				files := map[string]string{}
				for name, f := range rc.GetConfig().GetConfigMap() {
					files[name] = string(f.GetBody())
				}
				out.emit(map[string]any{
					"event": "remote_config",
					"hash":  hex.EncodeToString(rc.GetConfigHash()),
					"files": files,
				})
				// Applying may take long in a real agent: do it after OnMessage returns.
				go applyConfig(context.Background(), rc)
			},
			GetEffectiveConfig: a.effectiveConfig,
		},
	}
	if o.token != "" {
		settings.Header = http.Header{"Authorization": []string{"Bearer " + o.token}}
	}
	if o.heartbeat > 0 {
		settings.HeartbeatInterval = &o.heartbeat
	}

	if err := opamp.Start(context.Background(), settings); err != nil {
		fmt.Fprintf(os.Stderr, "Start: %v\n", err)
		return 1
	}

	code := 0
	select {
	case <-done:
		// SetRemoteConfigStatus only schedules the report; give the client time to send it.
		time.Sleep(time.Second)
		applying.Lock()
		out.emit(map[string]any{"event": "done", "hashes": appliedHashes})
		applying.Unlock()
	case <-time.After(o.timeout):
		out.emit(map[string]any{"event": "timeout", "after": o.timeout.String()})
		code = 1
	}

	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := opamp.Stop(stopCtx); err != nil {
		out.emit(map[string]any{"event": "stop_failed", "error": err.Error()})
		if code == 0 {
			code = 1
		}
	} else {
		out.emit(map[string]any{"event": "stopped"})
	}
	return code
}
