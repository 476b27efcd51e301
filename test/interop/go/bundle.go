package main

// What the agent takes beyond its config (the bundle): its own telemetry destinations
// (-own-telemetry), packages synced by the library's package syncer into a folder
// (-packages <dir>), and restart commands (-restart). Each is printed as a JSON event line.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/open-telemetry/opamp-go/client/types"
	"github.com/open-telemetry/opamp-go/protobufs"
)

// dirPackages is a PackagesStateProvider that keeps package files in a folder and their
// state in memory. UpdateContent verifies the offered SHA-256 (the library leaves that to
// the provider): a mismatch is an install failure.
type dirPackages struct {
	mu       sync.Mutex
	dir      string
	allHash  []byte
	states   map[string]types.PackageState
	statuses *protobufs.PackageStatuses
}

func newDirPackages(dir string) *dirPackages {
	return &dirPackages{dir: dir, states: map[string]types.PackageState{}}
}

func (d *dirPackages) AllPackagesHash() ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.allHash, nil
}

func (d *dirPackages) SetAllPackagesHash(hash []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.allHash = hash
	return nil
}

func (d *dirPackages) Packages() ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := make([]string, 0, len(d.states))
	for name := range d.states {
		names = append(names, name)
	}
	return names, nil
}

func (d *dirPackages) PackageState(name string) (types.PackageState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.states[name], nil
}

func (d *dirPackages) SetPackageState(name string, state types.PackageState) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	// The syncer passes the state it read before CreatePackage, with a zero Type: keep the
	// type the package was created with, or the next offer would see a type change.
	if prev, ok := d.states[name]; ok {
		state.Type = prev.Type
	}
	state.Exists = true
	d.states[name] = state
	return nil
}

func (d *dirPackages) CreatePackage(name string, typ protobufs.PackageType) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.states[name].Exists {
		return fmt.Errorf("package %q exists", name)
	}
	d.states[name] = types.PackageState{Exists: true, Type: typ}
	return nil
}

func (d *dirPackages) file(name string) string {
	if name == "" {
		name = "_agent"
	}
	return filepath.Join(d.dir, filepath.Base(name))
}

func (d *dirPackages) FileContentHash(name string) ([]byte, error) {
	body, err := os.ReadFile(d.file(name))
	if err != nil {
		return nil, nil
	}
	sum := sha256.Sum256(body)
	return sum[:], nil
}

func (d *dirPackages) UpdateContent(ctx context.Context, name string, data io.Reader, contentHash, _ []byte) error {
	body, err := io.ReadAll(data)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:], contentHash) {
		return fmt.Errorf("sha256 mismatch: got %s, offered %s", hex.EncodeToString(sum[:]), hex.EncodeToString(contentHash))
	}
	return os.WriteFile(d.file(name), body, 0o644)
}

func (d *dirPackages) DeletePackage(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.states, name)
	_ = os.Remove(d.file(name))
	return nil
}

func (d *dirPackages) LastReportedStatuses() (*protobufs.PackageStatuses, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.statuses, nil
}

func (d *dirPackages) SetLastReportedStatuses(statuses *protobufs.PackageStatuses) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.statuses = statuses
	return nil
}

// bundleCapabilities adds the capabilities the bundle flags ask for.
func bundleCapabilities(o options, caps protobufs.AgentCapabilities) protobufs.AgentCapabilities {
	if o.ownTelemetry {
		caps |= protobufs.AgentCapabilities_AgentCapabilities_ReportsOwnMetrics |
			protobufs.AgentCapabilities_AgentCapabilities_ReportsOwnTraces |
			protobufs.AgentCapabilities_AgentCapabilities_ReportsOwnLogs
	}
	if o.packages != "" {
		caps |= protobufs.AgentCapabilities_AgentCapabilities_AcceptsPackages |
			protobufs.AgentCapabilities_AgentCapabilities_ReportsPackageStatuses
	}
	if o.restart {
		caps |= protobufs.AgentCapabilities_AgentCapabilities_AcceptsRestartCommand
	}
	return caps
}

func telemetryEvent(signal string, s *protobufs.TelemetryConnectionSettings) map[string]any {
	headers := map[string]string{}
	for _, h := range s.GetHeaders().GetHeaders() {
		headers[h.GetKey()] = h.GetValue()
	}
	return map[string]any{"event": "own_telemetry", "signal": signal, "endpoint": s.GetDestinationEndpoint(), "headers": headers}
}

// onBundleMessage handles the non-config parts of a ServerToAgent.
func onBundleMessage(ctx context.Context, out *events, logger types.Logger, pkgs *dirPackages, msg *types.MessageData) {
	for signal, s := range map[string]*protobufs.TelemetryConnectionSettings{
		"metrics": msg.OwnMetricsConnSettings, "traces": msg.OwnTracesConnSettings, "logs": msg.OwnLogsConnSettings,
	} {
		if s != nil {
			out.emit(telemetryEvent(signal, s))
		}
	}
	if msg.PackagesAvailable != nil && msg.PackageSyncer != nil && pkgs != nil {
		names := []string{}
		for name, p := range msg.PackagesAvailable.GetPackages() {
			names = append(names, name+"@"+p.GetVersion())
		}
		out.emit(map[string]any{"event": "packages_available", "packages": names, "allHash": hex.EncodeToString(msg.PackagesAvailable.GetAllPackagesHash())})
		syncer := msg.PackageSyncer
		if err := syncer.Sync(ctx); err != nil {
			logger.Errorf(ctx, "package sync: %v", err)
			return
		}
		go func() {
			<-syncer.Done()
			st, _ := pkgs.LastReportedStatuses()
			report := map[string]any{}
			for name, s := range st.GetPackages() {
				report[name] = map[string]any{"status": s.GetStatus().String(), "version": s.GetAgentHasVersion(), "error": s.GetErrorMessage()}
			}
			out.emit(map[string]any{"event": "packages_synced", "statuses": report})
		}()
	}
}
