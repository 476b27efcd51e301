/**
 * Setting keys of the most common upstream components and of service.telemetry, checked as
 * WARNINGS (OTELCOL_UNKNOWN_SETTING): a misspelled key (`compresion`, `tls_settings`) is
 * silently ignored by some Collector versions and refused by others. Only keys listed here
 * are known; components not listed are not checked. Deprecated settings are reported as
 * OTELCOL_DEPRECATED_SETTING.
 */
import { didYouMean } from "./did-you-mean.js";
import type { ComponentKind } from "./otelcol-catalog.js";
import { type CheckContext, isObject } from "./otelcol-context.js";
import { typeOf } from "./otelcol-ids.js";
import type { PathSegment } from "./source-map.js";

/** Known keys; a nested spec checks the value's keys too, null leaves it unchecked. */
interface Spec {
  [key: string]: Spec | null;
}

const keys = (list: string, nested: Record<string, Spec> = {}): Spec => {
  const spec: Spec = {};
  for (const k of list.trim().split(/\s+/)) spec[k] = null;
  return Object.assign(spec, nested);
};

const GRPC_CLIENT = `endpoint compression tls headers keepalive balancer_name authority auth
  read_buffer_size write_buffer_size wait_for_ready timeout sending_queue retry_on_failure batcher
  middlewares`;
const HTTP_CLIENT = `endpoint traces_endpoint metrics_endpoint logs_endpoint profiles_endpoint encoding
  compression compression_params tls headers timeout read_buffer_size write_buffer_size
  max_idle_conns max_idle_conns_per_host max_conns_per_host idle_conn_timeout disable_keep_alives
  http2_read_idle_timeout http2_ping_timeout auth cookies proxy_url sending_queue retry_on_failure
  force_attempt_http2 middlewares batcher`;
const RETRY = keys(
  "enabled initial_interval randomization_factor multiplier max_interval max_elapsed_time",
);

const OTLP_RECEIVER = keys("", {
  protocols: keys("", {
    grpc: keys(`endpoint transport tls max_recv_msg_size_mib max_concurrent_streams read_buffer_size
      write_buffer_size keepalive auth include_metadata middlewares`),
    http: keys(`endpoint tls cors auth max_request_body_size include_metadata response_headers
      compression_algorithms read_timeout read_header_timeout write_timeout idle_timeout
      keep_alives_enabled traces_url_path metrics_url_path logs_url_path profiles_url_path middlewares`),
  }),
});

/** By kind, then by type with underscores removed. */
const COMPONENT_SPECS: Partial<Record<ComponentKind, Record<string, Spec>>> = {
  receivers: { otlp: OTLP_RECEIVER },
  exporters: {
    otlp: keys(GRPC_CLIENT, { retry_on_failure: RETRY }),
    otlpgrpc: keys(GRPC_CLIENT, { retry_on_failure: RETRY }),
    otlphttp: keys(HTTP_CLIENT, { retry_on_failure: RETRY }),
    debug: keys("verbosity sampling_initial sampling_thereafter use_internal_logger sending_queue"),
  },
  processors: {
    batch: keys(
      "timeout send_batch_size send_batch_max_size metadata_keys metadata_cardinality_limit",
    ),
    memorylimiter: keys(
      "check_interval limit_mib spike_limit_mib limit_percentage spike_limit_percentage",
    ),
  },
};

const TELEMETRY: Spec = keys("resource", {
  logs: keys(`level development encoding disable_caller disable_stacktrace sampling output_paths
    error_output_paths initial_fields processors`),
  metrics: keys("level address readers views"),
  traces: keys("level propagators processors sampler"),
});

function show(path: readonly PathSegment[]): string {
  return path.join(".");
}

function checkKeys(
  ctx: CheckContext,
  value: unknown,
  spec: Spec,
  path: PathSegment[],
  owner: string,
): void {
  if (!isObject(value)) return;
  const known = Object.keys(spec);
  for (const [k, v] of Object.entries(value)) {
    if (!(k in spec)) {
      const meant = didYouMean(k, known);
      ctx.add(
        [...path, k],
        "warning",
        "OTELCOL_UNKNOWN_SETTING",
        `${owner} has no setting "${k}" at ${show([...path, k])}${meant ? `; did you mean "${meant}"?` : ""} (depending on the Collector version it is ignored or refused)`,
        { key: k, ...(meant ? { suggestion: meant } : {}) },
        true,
      );
      continue;
    }
    const nested = spec[k];
    if (nested) checkKeys(ctx, v, nested, [...path, k], owner);
  }
}

export function checkSettings(ctx: CheckContext, config: Record<string, unknown>): void {
  for (const [kind, specs] of Object.entries(COMPONENT_SPECS) as Array<
    [ComponentKind, Record<string, Spec>]
  >) {
    const section = config[kind];
    if (!isObject(section)) continue;
    for (const [id, settings] of Object.entries(section)) {
      const spec = specs[typeOf(id).replace(/_/g, "").toLowerCase()];
      if (spec) checkKeys(ctx, settings, spec, [kind, id], `${kind.slice(0, -1)} "${id}"`);
    }
  }
  const service = config.service;
  if (isObject(service) && isObject(service.telemetry)) {
    const telemetry = service.telemetry;
    // Unknown top-level telemetry keys are schema errors; below that, warnings.
    for (const sub of ["logs", "metrics", "traces"]) {
      const spec = TELEMETRY[sub];
      if (spec)
        checkKeys(ctx, telemetry[sub], spec, ["service", "telemetry", sub], "service.telemetry");
    }
    if (isObject(telemetry.metrics) && telemetry.metrics.address !== undefined)
      ctx.add(
        ["service", "telemetry", "metrics", "address"],
        "warning",
        "OTELCOL_DEPRECATED_SETTING",
        "service.telemetry.metrics.address is deprecated (removed in recent Collectors): use service.telemetry.metrics.readers with a pull/prometheus reader",
        { key: "address" },
        true,
      );
  }
}
