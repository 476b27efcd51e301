/** Fleet repository content for tests: realistic group.yaml and Collector configs. */
import { TestRepo } from "./git-repo.js";

export function collectorYaml(label: string): string {
  return `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
  batch:
    timeout: 5s
  resource:
    attributes:
      - key: fleet.group
        value: ${label}
        action: upsert
exporters:
  otlphttp:
    endpoint: https://otlp.example.com
  debug:
    verbosity: basic
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, resource, batch]
      exporters: [otlphttp]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, resource, batch]
      exporters: [otlphttp, debug]
`;
}

export interface GroupYamlOptions {
  match?: Record<string, string>;
  expressions?: Array<{ key: string; operator: string; values?: string[] }>;
  priority?: number;
}

export function groupYaml(o: GroupYamlOptions = {}): string {
  const lines = ["selector:"];
  const match = o.match ?? {};
  if (Object.keys(match).length > 0) {
    lines.push("  match:");
    for (const [k, v] of Object.entries(match)) lines.push(`    ${k}: ${JSON.stringify(v)}`);
  }
  if (o.expressions && o.expressions.length > 0) {
    lines.push("  expressions:");
    for (const e of o.expressions) {
      const values = e.values
        ? `, values: [${e.values.map((v) => JSON.stringify(v)).join(", ")}]`
        : "";
      lines.push(`    - {key: ${e.key}, operator: ${e.operator}${values}}`);
    }
  }
  if (o.priority !== undefined) lines.push(`priority: ${o.priority}`);
  return `${lines.join("\n")}\n`;
}

/** Files of one group folder (paths relative to the fleet root). */
export function groupFiles(
  name: string,
  o: GroupYamlOptions & { label?: string } = {},
): Record<string, string> {
  return {
    [`groups/${name}/group.yaml`]: groupYaml({ match: { "service.name": name }, ...o }),
    [`groups/${name}/collector.yaml`]: collectorYaml(o.label ?? name),
  };
}

/** A fleet of `n` groups named g0000…, with `prefix` before every path (for --path tests). */
export function fleetFiles(n: number, prefix = ""): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const name = `g${String(i).padStart(4, "0")}`;
    for (const [p, c] of Object.entries(groupFiles(name))) out[`${prefix}${p}`] = c;
  }
  return out;
}

/** group.yaml selecting host.role `role`: one stage (100 %), a 10 s apply timeout, 1 s heartbeats. */
export function roleGroupYaml(role: string): string {
  return `selector:
  match: {host.role: ${role}}
rollout:
  stages: [{percent: 100}]
  applyTimeout: 10s
heartbeatInterval: 1s
`;
}

/**
 * A new repository with one commit (`message`): each group's group.yaml (name → its text) and
 * a collector.yaml labelled `<name>-v1` (collectorYaml).
 */
export function groupsRepo(groups: Record<string, string>, message = "groups"): TestRepo {
  const repo = new TestRepo();
  for (const [name, yaml] of Object.entries(groups))
    repo.writeAll({
      [`groups/${name}/group.yaml`]: yaml,
      [`groups/${name}/collector.yaml`]: collectorYaml(`${name}-v1`),
    });
  repo.commit(message);
  return repo;
}
