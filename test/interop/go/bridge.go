package main

// The Operator OpAMP Bridge's acceptance rules, played without Kubernetes: each remote config
// entry is checked exactly as opentelemetry-operator's cmd/operator-opamp-bridge does before it
// touches the cluster (agent.applyRemoteConfig, operator.kubeResourceFromKey,
// operator.Client.Apply and validateLabels), so a config this accepts is one the real bridge
// would apply, and the errors it reports are the bridge's own messages.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/open-telemetry/opamp-go/protobufs"
	"gopkg.in/yaml.v3"
)

const (
	managedLabel   = "opentelemetry.io/opamp-managed"
	reportingLabel = "opentelemetry.io/opamp-reporting"
)

// collectorResource is the part of a v1beta1 OpenTelemetryCollector the bridge relies on;
// spec.config must be a mapping, as v1beta1's Config struct is.
type collectorResource struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Config map[string]any `yaml:"config"`
	} `yaml:"spec"`
}

// bridgeCheck returns the error the bridge would report for one config map, nil when it
// would apply every entry.
func bridgeCheck(cfg *protobufs.AgentConfigMap, bridgeName string) error {
	var errs []error
	for key, file := range cfg.GetConfigMap() {
		if key == "" {
			errs = append(errs, errors.New("remote config entry has empty name"))
			continue
		}
		if len(file.GetBody()) == 0 {
			errs = append(errs, fmt.Errorf("remote config entry %q has empty body", key))
			continue
		}
		if err := applyEntry(key, file.GetBody(), bridgeName); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func applyEntry(key string, body []byte, bridgeName string) error {
	// kubeResourceFromKey: namespace/name, exactly two parts.
	if len(strings.Split(key, "/")) != 2 {
		return errors.New("invalid key")
	}
	var collector collectorResource
	if err := yaml.Unmarshal(body, &collector); err != nil {
		return fmt.Errorf("failed to unmarshal config into v1beta1 API Version: %v", err)
	}
	labels := collector.Metadata.Labels
	if strings.EqualFold(labels[reportingLabel], "true") {
		return fmt.Errorf("cannot modify a collector with `%s: true`", reportingLabel)
	}
	if !strings.EqualFold(labels[managedLabel], "true") && !strings.EqualFold(labels[managedLabel], bridgeName) {
		return fmt.Errorf("cannot modify a collector that doesn't have `%s: true | <bridge-name>` set", managedLabel)
	}
	return nil
}

// bridgeEffective is what the bridge reports as effective config: one entry per collector,
// keyed namespace/name (from the key it applied), content type "yaml", the whole resource.
func bridgeEffective(cfg *protobufs.AgentConfigMap) map[string]*protobufs.AgentConfigFile {
	files := map[string]*protobufs.AgentConfigFile{}
	for key, file := range cfg.GetConfigMap() {
		files[key] = &protobufs.AgentConfigFile{Body: file.GetBody(), ContentType: "yaml"}
	}
	return files
}
