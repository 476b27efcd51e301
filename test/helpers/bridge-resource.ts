/** OpenTelemetryCollector resources, as an otelcol-bridge group holds them, for tests. */
import { COLLECTOR_YAML } from "../validate/helpers.js";

/** An OpenTelemetryCollector resource around COLLECTOR_YAML. */
export function collectorResource(
  name: string,
  namespace: string,
  labels = 'opentelemetry.io/opamp-managed: "true"',
  apiVersion = "opentelemetry.io/v1beta1",
): string {
  const config = COLLECTOR_YAML.split("\n")
    .map((l) => (l ? `    ${l}` : l))
    .join("\n");
  const labelLines = labels ? `  labels:\n    ${labels}\n` : "";
  return `apiVersion: ${apiVersion}\nkind: OpenTelemetryCollector\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\n${labelLines}spec:\n  mode: deployment\n  config:\n${config}`;
}
