/**
 * A catalog of upstream component types (opentelemetry-collector core and -contrib, current
 * and recently removed), used only for WARNINGS: vendor distributions add their own types,
 * and upstream renames types (the snake_case wave: `otlp_grpc`, `k8s_attributes`,
 * `host_metrics`, ...). A type is known when it is listed, or when it equals a listed type
 * once underscores are removed (so `resource_detection` matches `resourcedetection`, and a
 * future rename of a listed type is recognized without a catalog update).
 */

export type ComponentKind = "receivers" | "processors" | "exporters" | "connectors" | "extensions";

export const COMPONENT_KINDS: readonly ComponentKind[] = [
  "receivers",
  "processors",
  "exporters",
  "connectors",
  "extensions",
];

/** Singular, for messages: "receiver", "processor", ... */
export function singular(kind: ComponentKind): string {
  return kind.slice(0, -1);
}

const words = (s: string) => s.trim().split(/\s+/);

const CATALOG: Record<ComponentKind, readonly string[]> = {
  receivers: words(`
    otlp nop active_directory_ds aerospike apache apachespark awscloudwatch awscloudwatchmetrics
    awscontainerinsightreceiver awsecscontainermetrics awsfirehose awss3 awsxray azureblob
    azureeventhub azuremonitor bigip carbon chrony cloudflare cloudfoundry collectd couchdb
    datadog docker_stats dotnet_diagnostics elasticsearch envoyals expvar faro file filelog
    filestats flinkmetrics fluentforward github gitlab googlecloudmonitoring googlecloudpubsub
    googlecloudpubsubpush googlecloudspanner haproxy hostmetrics httpcheck influxdb iis jaeger
    jmx journald k8s_cluster k8s_events k8sobjects kafka kafkametrics kubeletstats libhoney
    loki memcached mongodb mongodbatlas mysql namedpipe netflow nginx nsxt ntp opencensus
    oracledb osquery otelarrow otlpjsonfile podman_stats postgresql profiling prometheus
    prometheus_exec prometheusremotewrite prometheus_simple pulsar purefa purefb rabbitmq
    receiver_creator redis riak saphana sapm signalfx skywalking snmp snowflake solace
    splunkenterprise splunk_hec sqlquery sqlserver sshcheck statsd stef syslog systemd tcpcheck
    tcplog tlscheck udplog vcenter wavefront webhookevent windowseventlog windowsperfcounters
    windowsservice yanggrpc zipkin zookeeper awslambda macosunifiedlogging ebpf
  `),
  processors: words(`
    batch memory_limiter attributes cumulativetodelta coralogix deltatocumulative deltatorate
    dnslookup filter geoip groupbyattrs groupbytrace interval isolationforest k8sattributes
    logdedup logstransform lookup metricsgeneration experimental_metricsgeneration
    metricstarttime metricstransform probabilistic_sampler redaction remotetap
    resourcedetection resource routing schema servicegraph span spanmetrics sumologic
    tail_sampling transform unroll datadog
  `),
  exporters: words(`
    debug nop otlp otlphttp otlp_grpc otlp_http logging alibabacloud_logservice
    awscloudwatchlogs awsemf awskinesis awsprometheusremotewrite awss3 awsxray azureblob
    azuredataexplorer azuremonitor bmchelix carbon cassandra clickhouse coralogix datadog
    dataset doris dynatrace elasticsearch f5cloud faro file googlecloud googlecloudpubsub
    googlecloudstorage googlemanagedprometheus honeycombmarker humio influxdb instana jaeger
    jaeger_thrift kafka kinetica loadbalancing logicmonitor logzio loki mezmo newrelic
    opencensus opensearch otelarrow parquet prometheus prometheusremotewrite pulsar rabbitmq
    sapm sentry signalfx skywalking splunk_hec stef sumologic syslog tanzuobservability
    tencentcloud_logservice tinybird zipkin
  `),
  connectors: words(`
    forward count datadog exceptions failover grafanacloud metricsaslogs otlpjson roundrobin
    routing servicegraph signaltometrics slowsql spanmetrics sum
  `),
  extensions: words(`
    zpages memory_limiter ack asapclient awsproxy azureauth basicauth bearertokenauth
    cgroupruntime datadog avro_log_encoding awscloudwatchmetricstreams_encoding
    awslogs_encoding googlecloudlogentry_encoding jaeger_encoding json_log_encoding
    otlp_encoding skywalking_encoding text_encoding zipkin_encoding googleclientauth
    headers_setter health_check healthcheckv2 http_forwarder jaegerremotesampling
    oauth2client docker_observer ecs_observer ecs_task_observer host_observer k8s_observer
    kafkatopics_observer cf_observer oidc opamp pprof remotetap sigv4auth file_storage
    db_storage redis_storage sumologic k8s_leader_elector solarwindsapmsettings
  `),
};

/**
 * Types that no longer exist upstream, with what replaced them (reported as warnings: the
 * config was valid for the Collector version it was written for).
 */
export const REMOVED_TYPES: Partial<Record<ComponentKind, Record<string, string>>> = {
  exporters: {
    logging: 'removed in v0.111.0; use the "debug" exporter',
    jaeger: 'removed in v0.85.0; Jaeger accepts OTLP: use the "otlp" exporter',
    jaeger_thrift: 'removed in v0.87.0; use the "otlp" exporter',
    opencensus: "removed from contrib in 2024; use OTLP",
    loki: 'removed in v0.114.0; Loki accepts OTLP: use the "otlphttp" exporter',
  },
  receivers: {
    opencensus: "removed from contrib in 2024; use OTLP",
  },
  processors: {
    spanmetrics: 'removed in v0.85.0; use the "spanmetrics" connector',
    servicegraph: 'removed; use the "servicegraph" connector',
    routing: 'removed in v0.116.0; use the "routing" connector',
  },
};

const squash = (t: string) => t.replace(/_/g, "").toLowerCase();

const KNOWN = new Map<ComponentKind, Set<string>>(
  COMPONENT_KINDS.map((k) => [k, new Set(CATALOG[k].map(squash))]),
);

/** Every listed type of a kind (for did-you-mean). */
export function catalogTypes(kind: ComponentKind): readonly string[] {
  return CATALOG[kind];
}

/** True when `type` is an upstream type of `kind` (classic or snake_case spelling). */
export function isKnownType(kind: ComponentKind, type: string): boolean {
  return (KNOWN.get(kind) as Set<string>).has(squash(type));
}

export type Signal = "traces" | "metrics" | "logs" | "profiles";

export const SIGNALS: readonly Signal[] = ["traces", "metrics", "logs", "profiles"];

const SAME = (from: Signal, to: Signal) => from === to;
const TO_METRICS = (_from: Signal, to: Signal) => to === "metrics";

/**
 * Which (exporter-side signal, receiver-side signal) pairs a connector type supports, for the
 * connectors whose support is known; undefined for others (then every pair is assumed).
 */
const CONNECTOR_PAIRS: Record<string, (from: Signal, to: Signal) => boolean> = {
  forward: SAME,
  routing: SAME,
  failover: SAME,
  roundrobin: SAME,
  count: TO_METRICS,
  sum: (f, t) => f !== "profiles" && t === "metrics",
  signaltometrics: TO_METRICS,
  spanmetrics: (f, t) => f === "traces" && t === "metrics",
  servicegraph: (f, t) => f === "traces" && t === "metrics",
  grafanacloud: (f, t) => f === "traces" && t === "metrics",
  exceptions: (f, t) => f === "traces" && (t === "metrics" || t === "logs"),
  datadog: (f, t) => f === "traces" && (t === "metrics" || t === "traces"),
  otlpjson: (f, t) => f === "logs" && t !== "profiles",
  metricsaslogs: (f, t) => f === "metrics" && t === "logs",
  slowsql: (f, t) => f === "traces" && t === "logs",
};

/** True when a connector of `type` can take `from` data and emit `to` data. */
export function connectorSupports(type: string, from: Signal, to: Signal): boolean {
  const rule = CONNECTOR_PAIRS[squash(type)];
  return rule ? rule(from, to) : true;
}

/** Human description of a known connector's pairs, e.g. "traces→metrics", or undefined. */
export function connectorPairs(type: string): string | undefined {
  const rule = CONNECTOR_PAIRS[squash(type)];
  if (!rule) return undefined;
  const pairs: string[] = [];
  for (const f of SIGNALS) for (const t of SIGNALS) if (rule(f, t)) pairs.push(`${f}→${t}`);
  return pairs.join(", ");
}
