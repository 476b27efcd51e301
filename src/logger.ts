/** JSON-lines logging (pino) for the service; one root logger, children per module. */
import { type Logger, pino } from "pino";
import { replaceSpans } from "./redact/index.js";

export function createLogger(level = "info"): Logger {
  return pino({ level, base: { service: "opamp-gitops" }, serializers: { err: safeError } });
}

/**
 * pino's error serializer, made safe for errors that carry agent data: ioredis attaches the
 * failed command with its arguments (an agent's stored report, error text, effective config)
 * to a reply error, and any error message may quote what an agent sent. The arguments are
 * dropped (the command name stays) and secrets in the message and stack are replaced by
 * src/redact's value layer.
 */
export function safeError(err: unknown): unknown {
  const out = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  if (!out || typeof out !== "object") return out;
  const command = out.command as { name?: unknown } | undefined;
  if (command && typeof command === "object") out.command = { name: command.name };
  for (const field of ["message", "stack"] as const) {
    const text = out[field];
    if (typeof text === "string") out[field] = replaceSpans(text, () => "<redacted>");
  }
  return out;
}

/** `logger` with safeError as its error serializer (for loggers made elsewhere, e.g. tests). */
export function withSafeErrors(logger: Logger): Logger {
  return logger.child({}, { serializers: { err: safeError } });
}
