/**
 * Layer 2a of the secret detector: well-known token and credential formats, from secretlint's
 * maintained recommended preset (@secretlint/secretlint-rule-preset-recommend: AWS, GCP,
 * GitHub, GitLab, Slack tokens and webhooks, npm, SendGrid, Shopify, Grafana, OpenAI,
 * Anthropic, Hugging Face, Linear, Notion, 1Password, HashiCorp Vault, Vercel, Databricks,
 * Docker, Figma, private keys, Basic-auth URLs, database connection strings).
 *
 * The preset's rules are driven through secretlint's rule contract (`create(context)` returns
 * handlers; `file(source)` calls `context.report({range})`) directly, not through
 * @secretlint/core: the core is asynchronous and reads files, and redaction runs synchronously
 * inside the status renderer. Every text rule of the preset reports synchronously; a handler
 * that returns a promise (the GCP rule's .p12 branch, for binary files only) is ignored.
 * Filter rules (comment directives) are not run: nothing in agent text may switch detection
 * off. AWS key ids are scanned too (`enableIDScanRule`).
 */
import { rules as presetRules } from "@secretlint/secretlint-rule-preset-recommend";

/** A half-open character range [start, end) of a string. */
export type Span = [number, number];

interface RuleSource {
  content: string;
  filePath?: string;
  ext: string;
  contentType: "text";
}
interface RuleHandlers {
  file?: (source: RuleSource) => unknown;
}
interface RuleContext {
  report(d: { range?: readonly [number, number] }): void;
  ignore(d: unknown): void;
  createTranslator(messages: unknown): (id: string, data?: unknown) => string;
  registerRule(rule: unknown): void;
}
interface RuleCreator {
  meta: { id: string; type?: string };
  create(context: RuleContext, options: Record<string, unknown>): RuleHandlers;
}

/** Options given to individual rules (anything not listed: none). */
const RULE_OPTIONS: Record<string, Record<string, unknown>> = {
  "@secretlint/secretlint-rule-aws": { enableIDScanRule: true },
};

/** The scanner rules of the preset, with their ids (for the docs and tests). */
const RULES = (presetRules as unknown as RuleCreator[]).filter(
  // filter-comments calls itself a scanner but only reads `secretlint-disable` comments.
  (r) => r.meta.type === "scanner" && !r.meta.id.endsWith("/secretlint-rule-filter-comments"),
);

export const SECRETLINT_RULE_IDS: readonly string[] = RULES.map((r) => r.meta.id);

/** The list of the call in progress; null outside a call, so a late report goes nowhere. */
let current: Span[] | null = null;
const context: RuleContext = {
  report(d) {
    if (d.range) current?.push([d.range[0], d.range[1]]);
  },
  ignore() {},
  createTranslator: () => (id) => id,
  registerRule() {},
};
const handlers = RULES.map((r) => r.create(context, RULE_OPTIONS[r.meta.id] ?? {}));

/**
 * Spans of `text` that secretlint's recommended rules report. Synchronous; not re-entrant (a
 * rule never calls back into redaction).
 */
export function secretlintSpans(text: string): Span[] {
  const source: RuleSource = { content: text, ext: ".txt", contentType: "text" };
  const out: Span[] = [];
  current = out;
  for (const h of handlers) {
    try {
      const r = h.file?.(source);
      // A rule that went asynchronous reports after `current` is reset: nothing is recorded.
      if (r && typeof (r as Promise<unknown>).then === "function")
        (r as Promise<unknown>).catch(() => {});
    } catch {
      // A rule that throws on odd input finds nothing; the other layers still run.
    }
  }
  current = null;
  return out.filter(([s, e]) => e > s && s >= 0 && e <= text.length);
}
