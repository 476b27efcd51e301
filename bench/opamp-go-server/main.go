// The peer of `npm run bench:serve`: a small OpAMP server built on the opamp-go server
// library that answers every message the way the service does for one group: agents are
// placed in a group by their service.name attribute, asked for their full state when it is
// unknown, and sent the group's remote config until they report it APPLIED. No Redis, no Git,
// no rollouts: what one OpAMP server with per-agent state costs in Go.
//
// Prints one JSON line on stdout once listening: {"port":N,"pid":N}. Stops on SIGTERM/SIGINT.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/open-telemetry/opamp-go/protobufs"
	"github.com/open-telemetry/opamp-go/server"
	"github.com/open-telemetry/opamp-go/server/types"
)

type group struct {
	body []byte
	hash []byte
}

type agent struct {
	group   *group
	offered []byte
}

type peer struct {
	mu     sync.Mutex
	agents map[string]*agent
	groups map[string]*group
}

func (p *peer) onMessage(_ context.Context, conn types.Connection, msg *protobufs.AgentToServer) *protobufs.ServerToAgent {
	uid := string(msg.InstanceUid)
	reply := &protobufs.ServerToAgent{
		InstanceUid:  msg.InstanceUid,
		Capabilities: uint64(protobufs.ServerCapabilities_ServerCapabilities_AcceptsStatus | protobufs.ServerCapabilities_ServerCapabilities_OffersRemoteConfig | protobufs.ServerCapabilities_ServerCapabilities_AcceptsEffectiveConfig),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.agents[uid]
	if a == nil {
		a = &agent{}
		p.agents[uid] = a
	}
	if msg.AgentDisconnect != nil {
		delete(p.agents, uid)
		return reply
	}
	if d := msg.AgentDescription; d != nil {
		a.group = nil
		for _, kv := range d.IdentifyingAttributes {
			if kv.Key == "service.name" {
				a.group = p.groups[kv.Value.GetStringValue()]
			}
		}
	} else if a.group == nil {
		reply.Flags = uint64(protobufs.ServerToAgentFlags_ServerToAgentFlags_ReportFullState)
		return reply
	}
	g := a.group
	if g == nil {
		return reply
	}
	applied := msg.RemoteConfigStatus != nil && bytes.Equal(msg.RemoteConfigStatus.LastRemoteConfigHash, g.hash)
	if !applied && !bytes.Equal(a.offered, g.hash) {
		a.offered = g.hash
		reply.RemoteConfig = &protobufs.AgentRemoteConfig{
			ConfigHash: g.hash,
			Config: &protobufs.AgentConfigMap{ConfigMap: map[string]*protobufs.AgentConfigFile{
				"collector.yaml": {Body: g.body, ContentType: "text/yaml"},
			}},
		}
	}
	return reply
}

func main() {
	configPath := flag.String("config", "", "the group's Collector config file")
	serviceName := flag.String("service-name", "otelcol-bench", "agents with this service.name get the config")
	flag.Parse()
	body, err := os.ReadFile(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sum := sha256.Sum256(body)
	p := &peer{agents: map[string]*agent{}, groups: map[string]*group{*serviceName: {body: body, hash: sum[:]}}}
	srv := server.New(nil)
	handler, connContext, err := srv.Attach(server.Settings{
		Callbacks: types.Callbacks{
			OnConnecting: func(*http.Request) types.ConnectionResponse {
				return types.ConnectionResponse{Accept: true, ConnectionCallbacks: types.ConnectionCallbacks{
					OnMessage: p.onMessage,
					OnConnectionClose: func(conn types.Connection) {},
				}}
			},
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/opamp", handler)
	hs := &http.Server{Handler: mux, ConnContext: connContext}
	go func() { _ = hs.Serve(ln) }()
	line, _ := json.Marshal(map[string]int{"port": ln.Addr().(*net.TCPAddr).Port, "pid": os.Getpid()})
	fmt.Println(string(line))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	_ = ln.Close()
	os.Exit(0)
}
