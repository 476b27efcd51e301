/** JSON-lines logging (pino) for the service; one root logger, children per module. */
import { type Logger, pino } from "pino";

export function createLogger(level = "info"): Logger {
  return pino({ level, base: { service: "opamp-gitops" } });
}
