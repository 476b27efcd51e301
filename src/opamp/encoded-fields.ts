/**
 * The stored encoding of each report field of one agent (AgentState.encoded), kept as
 * one-byte strings (latin1, one char per byte). Memory per agent is what a fleet costs: a
 * string is one object in V8's heap (a 16-byte header beside the bytes), where a Buffer is a
 * Uint8Array, an ArrayBuffer, a backing store and a malloc block (~300 B beside the bytes,
 * ~1.3 KB per agent for three fields). And blocks that live as long as the agent, malloc'd
 * among the read buffers of a connect burst, keep the process' malloc heap from shrinking
 * after it.
 *
 * Reading a field gives a new Buffer holding a copy of the bytes (callers may keep it);
 * `raw` gives the stored string itself, the same object until the field is set again.
 */
import type { ReportField } from "./agent-state.js";

const FIELDS: readonly ReportField[] = [
  "description",
  "health",
  "effectiveConfig",
  "remoteConfigStatus",
  "packageStatuses",
  "customCapabilities",
  "availableComponents",
  "connectionSettingsStatus",
];

/** The bytes of `view` as a one-byte string (no copy of the view's whole buffer is kept). */
export function latin1(view: Uint8Array): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString("latin1");
}

/** One own property per field, made in the constructor so V8 keeps them inside the object. */
const SLOTS = FIELDS.map((f) => Symbol(f));

export class EncodedFields {
  constructor() {
    const slots = this as unknown as Record<symbol, string | undefined>;
    for (const slot of SLOTS) slots[slot] = undefined;
  }

  /** The stored string of `field` (see the file comment), or undefined. */
  raw(field: ReportField): string | undefined {
    return (this as unknown as Record<symbol, string | undefined>)[
      SLOTS[FIELDS.indexOf(field)] as symbol
    ];
  }

  static {
    FIELDS.forEach((field, i) => {
      const slot = SLOTS[i] as symbol;
      Object.defineProperty(EncodedFields.prototype, field, {
        enumerable: true,
        get(this: Record<symbol, string | undefined>) {
          const s = this[slot];
          return s === undefined ? undefined : Buffer.from(s, "latin1");
        },
        set(this: Record<symbol, string | undefined>, bytes: Uint8Array | undefined) {
          this[slot] = bytes === undefined ? undefined : latin1(bytes);
        },
      });
    });
  }
}
