/** The logging the status writer needs (a pino logger fits); silent by default. */
export interface StatusLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const SILENT: StatusLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
