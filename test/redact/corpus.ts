/**
 * The redaction corpus (test/redact/corpus/): Collector configs with secrets in every shape
 * issue 13 lists (configs/*.yaml|json) and agent error texts (errors.txt, entries separated
 * by a line "%%"). Every secret holds a unique marker LEAKnnn, so a leak, even of part of a
 * secret, is found by searching for the markers.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../../test/redact/corpus");

export const MARKER = /LEAK\d{3}/g;

export interface CorpusConfig {
  name: string;
  contentType: string;
  body: Buffer;
}

export function corpusConfigs(): CorpusConfig[] {
  const dir = join(root, "configs");
  return readdirSync(dir)
    .sort()
    .map((name) => ({
      name,
      contentType: name.endsWith(".json") ? "application/json" : "text/yaml",
      body: readFileSync(join(dir, name)),
    }));
}

export function corpusErrors(): string[] {
  return readFileSync(join(root, "errors.txt"), "utf8")
    .split("\n%%\n")
    .map((e) => e.replace(/\n$/, ""))
    .filter((e) => e !== "");
}

/** Attributes agents describe themselves with (description attributes carry secrets too). */
export const CORPUS_ATTRIBUTES: Record<string, string> = {
  "process.command_line": "otelcol --config /etc/otel.yaml --api.key=LEAK901abc",
  "deployment.token": "LEAK902tok",
  "service.instance.note": "Authorization: Bearer LEAK903zz",
  "k8s.pod.annotation.dsn": "postgres://otel:LEAK904@pg:5432/app",
};

/** Every marker in `text`. */
export function markersIn(text: string): string[] {
  return [...text.matchAll(MARKER)].map((m) => m[0]);
}
