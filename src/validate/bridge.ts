/**
 * What the OpenTelemetry Operator's OpAMP Bridge accepts, for groups with
 * `config.schema: otelcol-bridge` (learnt from opentelemetry-operator cmd/operator-opamp-bridge:
 * agent.applyRemoteConfig, operator.Client.Apply/validateLabels, kubeResourceFromKey):
 *
 * - each AgentConfigMap entry is one OpenTelemetryCollector, keyed `<namespace>/<name>` (the
 *   key must split on "/" into exactly two parts; an empty key or an empty body is refused);
 *   the bridge takes name and namespace from the key, so the key is built from the resource's
 *   own metadata and the two can never disagree;
 * - the body is unmarshalled into opentelemetry.io/v1beta1 (v1alpha1's string `config` fails);
 * - the resource must carry `opentelemetry.io/opamp-managed: "true"` or the bridge's name
 *   (compared case-insensitively), and must not carry `opentelemetry.io/opamp-reporting: "true"`.
 *
 * One file holds one resource (a file with several YAML documents is already an error), so a
 * group serves one entry per file. Codes (errors): BRIDGE_DUPLICATE_RESOURCE,
 * BRIDGE_NOT_MANAGED, BRIDGE_REPORTING_ONLY.
 */
import { finding } from "./findings.js";
import type { Finding } from "./model.js";
import { isObject } from "./otelcol-context.js";
import type { LoadedYaml } from "./yaml.js";

export const BRIDGE_MANAGED_LABEL = "opentelemetry.io/opamp-managed";
export const BRIDGE_REPORTING_LABEL = "opentelemetry.io/opamp-reporting";

/** The entry key the bridge expects for a resource, or undefined when metadata lacks a part. */
export function bridgeKey(resource: unknown): string | undefined {
  const metadata = isObject(resource) && isObject(resource.metadata) ? resource.metadata : {};
  const { namespace, name } = metadata;
  if (typeof namespace !== "string" || typeof name !== "string") return undefined;
  if (namespace === "" || name === "" || namespace.includes("/") || name.includes("/"))
    return undefined;
  return `${namespace}/${name}`;
}

/**
 * Checks the resources of one group (each already valid against otelcol-bridge.schema.json):
 * labels per resource, and keys unique across the group's files.
 */
export function checkBridgeResources(docs: readonly LoadedYaml[]): Finding[] {
  const findings: Finding[] = [];
  const seen = new Map<string, string>();
  for (const doc of docs) {
    const key = bridgeKey(doc.value);
    if (key === undefined) continue; // the schema reported the missing metadata
    const earlier = seen.get(key);
    if (earlier !== undefined)
      findings.push(
        finding(
          doc.file,
          doc.locate(["metadata", "name"]),
          "error",
          "BRIDGE_DUPLICATE_RESOURCE",
          `${doc.file} and ${earlier} both define the OpenTelemetryCollector ${key}: the bridge is served one entry per resource, keyed <namespace>/<name>, so each must be unique in the group`,
          { key, files: [earlier, doc.file] },
        ),
      );
    else seen.set(key, doc.file);
    findings.push(...checkLabels(doc, key));
  }
  return findings;
}

function checkLabels(doc: LoadedYaml, key: string): Finding[] {
  const metadata = isObject(doc.value) && isObject(doc.value.metadata) ? doc.value.metadata : {};
  const labels = isObject(metadata.labels) ? metadata.labels : {};
  const out: Finding[] = [];
  const reporting = labels[BRIDGE_REPORTING_LABEL];
  if (typeof reporting === "string" && reporting.toLowerCase() === "true")
    out.push(
      finding(
        doc.file,
        doc.locate(["metadata", "labels", BRIDGE_REPORTING_LABEL]),
        "error",
        "BRIDGE_REPORTING_ONLY",
        `${key} is labelled ${BRIDGE_REPORTING_LABEL}: "true", so the bridge only reports it and refuses to change it: remove that label`,
        { key },
      ),
    );
  const managed = labels[BRIDGE_MANAGED_LABEL];
  if (typeof managed !== "string" || managed === "" || managed.toLowerCase() === "false")
    out.push(
      finding(
        doc.file,
        doc.locate(isObject(metadata.labels) ? ["metadata", "labels"] : ["metadata"], {
          key: true,
        }),
        "error",
        "BRIDGE_NOT_MANAGED",
        `${key} lacks the label ${BRIDGE_MANAGED_LABEL}: "true" (or the bridge's name), without which the bridge refuses to create or update it`,
        { key },
      ),
    );
  return out;
}
