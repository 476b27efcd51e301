package main

// The -csr mode: an agent that gets its client certificate over OpAMP. It connects with
// bootstrap credentials (-cert/-key and/or -token), sends a ConnectionSettingsRequest with a
// CSR for a key it made itself, takes the certificate the server offers, reconnects with it
// over mutual TLS, and then keeps running until that certificate is refused (the test revokes
// it). Events: csr_sent, offer (a remote config, any phase), certificate, issued_connected,
// remote_config (one served over the issued certificate), refused, handshake, done.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/open-telemetry/opamp-go/client"
	"github.com/open-telemetry/opamp-go/client/types"
	"github.com/open-telemetry/opamp-go/protobufs"
)

type csrOptions struct {
	options
	ca, cert, key string
	// csrCN is the subject CN asked for; "" asks for this agent's own uid.
	csrCN string
	role  string
}

func newClient(transport string, logger types.Logger) client.OpAMPClient {
	if transport == "http" {
		return client.NewHTTP(logger)
	}
	return client.NewWebSocket(logger)
}

func runCSR(o csrOptions) int {
	out := &events{}
	logger := stderrLogger{verbose: o.verbose}
	endpoint, err := serverURL(o.url, o.transport)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad -url: %v\n", err)
		return 2
	}
	roots := x509.NewCertPool()
	if o.ca != "" {
		caPEM, err := os.ReadFile(o.ca)
		if err != nil || !roots.AppendCertsFromPEM(caPEM) {
			fmt.Fprintf(os.Stderr, "bad -ca %s: %v\n", o.ca, err)
			return 2
		}
	}
	id, _ := uuid.NewV7()
	out.emit(map[string]any{"event": "start", "instanceUid": id.String(), "transport": o.transport})

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 1
	}
	cn := o.csrCN
	if cn == "" {
		cn = id.String()
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		fmt.Fprintf(os.Stderr, "CSR: %v\n", err)
		return 1
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})

	issued := make(chan []byte, 1)
	var mu sync.Mutex
	phase := 1
	var issuedOnce, refusedOnce, configOnce sync.Once
	connectedIssued := make(chan struct{})
	refused := make(chan struct{})

	start := func(tlsCfg *tls.Config, token string, csr []byte) (client.OpAMPClient, error) {
		c := newClient(o.transport, logger)
		_ = c.SetAgentDescription(&protobufs.AgentDescription{
			IdentifyingAttributes: []*protobufs.KeyValue{
				stringAttr("service.name", "interop-go"),
				stringAttr("service.instance.id", id.String()),
			},
			NonIdentifyingAttributes: []*protobufs.KeyValue{stringAttr("host.role", o.role)},
		})
		caps := protobufs.AgentCapabilities_AgentCapabilities_ReportsStatus |
			protobufs.AgentCapabilities_AgentCapabilities_AcceptsRemoteConfig |
			protobufs.AgentCapabilities_AgentCapabilities_AcceptsOpAMPConnectionSettings |
			protobufs.AgentCapabilities_AgentCapabilities_ReportsHeartbeat
		_ = c.SetCapabilities(&caps)
		if csr != nil {
			if err := c.RequestConnectionSettings(&protobufs.ConnectionSettingsRequest{
				Opamp: &protobufs.OpAMPConnectionSettingsRequest{
					CertificateRequest: &protobufs.CertificateRequest{Csr: csr},
				},
			}); err != nil {
				return nil, err
			}
			out.emit(map[string]any{"event": "csr_sent", "cn": cn})
		}
		hb := o.heartbeat
		if hb == 0 {
			hb = time.Second
		}
		settings := types.StartSettings{
			OpAMPServerURL:    endpoint,
			InstanceUid:       types.InstanceUid(id),
			TLSConfig:         tlsCfg,
			HeartbeatInterval: &hb,
			Callbacks: types.Callbacks{
				OnConnectFailed: func(_ context.Context, err error) {
					mu.Lock()
					p := phase
					mu.Unlock()
					out.emit(map[string]any{"event": "connect_failed", "phase": p, "error": err.Error()})
					if p == 3 {
						refusedOnce.Do(func() {
							out.emit(map[string]any{"event": "refused", "error": err.Error()})
							close(refused)
						})
					}
				},
				OnError: func(_ context.Context, e *protobufs.ServerErrorResponse) {
					out.emit(map[string]any{"event": "server_error", "error": e.GetErrorMessage()})
				},
				OnMessage: func(_ context.Context, msg *types.MessageData) {
					mu.Lock()
					p := phase
					mu.Unlock()
					if msg.RemoteConfig != nil {
						out.emit(map[string]any{"event": "offer", "phase": p})
					}
					if p >= 2 {
						issuedOnce.Do(func() {
							out.emit(map[string]any{"event": "issued_connected"})
							close(connectedIssued)
						})
						if msg.RemoteConfig != nil {
							configOnce.Do(func() { out.emit(map[string]any{"event": "remote_config", "phase": p}) })
						}
					}
				},
				OnOpampConnectionSettings: func(_ context.Context, s *protobufs.OpAMPConnectionSettings) error {
					cert := s.GetCertificate().GetCert()
					if len(cert) == 0 {
						return nil
					}
					block, _ := pem.Decode(cert)
					if block == nil {
						return fmt.Errorf("the offered certificate is not PEM")
					}
					parsed, err := x509.ParseCertificate(block.Bytes)
					if err != nil {
						return err
					}
					uris := []string{}
					for _, u := range parsed.URIs {
						uris = append(uris, u.String())
					}
					out.emit(map[string]any{
						"event": "certificate", "serial": parsed.SerialNumber.Text(16), "cn": parsed.Subject.CommonName,
						"uris": uris, "notAfter": parsed.NotAfter.UTC().Format(time.RFC3339),
						"privateKeyLen": len(s.GetCertificate().GetPrivateKey()), "caCertLen": len(s.GetCertificate().GetCaCert()),
					})
					select {
					case issued <- cert:
					default:
					}
					return nil
				},
			},
		}
		if token != "" {
			settings.Header = http.Header{"Authorization": []string{"Bearer " + token}}
		}
		return c, c.Start(context.Background(), settings)
	}

	boot := &tls.Config{RootCAs: roots}
	if o.cert != "" {
		pair, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bad -cert/-key: %v\n", err)
			return 2
		}
		boot.Certificates = []tls.Certificate{pair}
	}
	first, err := start(boot, o.token, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
	if err != nil {
		fmt.Fprintf(os.Stderr, "Start: %v\n", err)
		return 1
	}
	stop := func(c client.OpAMPClient) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	}
	var certPEM []byte
	select {
	case certPEM = <-issued:
	case <-time.After(o.timeout):
		out.emit(map[string]any{"event": "timeout", "waiting": "certificate"})
		stop(first)
		return 1
	}
	stop(first)

	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		out.emit(map[string]any{"event": "error", "error": err.Error()})
		return 1
	}
	mu.Lock()
	phase = 2
	mu.Unlock()
	second, err := start(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}, "", nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Start: %v\n", err)
		return 1
	}
	defer stop(second)
	select {
	case <-connectedIssued:
	case <-time.After(o.timeout):
		out.emit(map[string]any{"event": "timeout", "waiting": "issued_connected"})
		return 1
	}
	// From now on a failed connection means the certificate was refused.
	mu.Lock()
	phase = 3
	mu.Unlock()
	select {
	case <-refused:
	case <-time.After(o.timeout):
		out.emit(map[string]any{"event": "timeout", "waiting": "refused"})
		return 1
	}
	// A fresh handshake with the revoked certificate: the server ends it at once.
	host := ""
	if u, err := parseHost(endpoint); err == nil {
		host = u
	}
	conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}})
	outcome := "refused"
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Write([]byte("GET /v1/opamp HTTP/1.1\r\nHost: x\r\n\r\n"))
		buf := make([]byte, 64)
		n, rerr := conn.Read(buf)
		if rerr == nil {
			outcome = "answered: " + string(buf[:n])
		} else {
			outcome = "closed: " + rerr.Error()
		}
		conn.Close()
	} else {
		outcome = "handshake failed: " + err.Error()
	}
	out.emit(map[string]any{"event": "handshake", "outcome": outcome})
	out.emit(map[string]any{"event": "done"})
	return 0
}

// parseHost returns host:port of an endpoint URL.
func parseHost(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	return u.Host, nil
}
