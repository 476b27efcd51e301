/** The Hono environment of the admin port: Node's request bindings and per-request values. */
import type { HttpBindings } from "@hono/node-server";

export interface AdminEnv {
  Bindings: HttpBindings;
  Variables: {
    /** True when the request was authorized by the console's session cookie. */
    session: boolean;
  };
}
