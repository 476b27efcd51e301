/**
 * Who a request comes from, for the admin port's per-client limits (admin-limits.ts): the
 * TCP peer's address, never a header a client writes (X-Forwarded-For is not trusted).
 */
import { isIP } from "node:net";

/** The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:10.0.0.5`), or undefined. */
function mappedV4(address: string): string | undefined {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m?.[1];
}

/** The eight 16-bit groups of an IPv6 address, as written (no leading zeros added). */
function v6Groups(address: string): string[] {
  const [head = "", tail] = address.split("::");
  // An embedded IPv4 tail (64:ff9b::1.2.3.4) stands for two groups.
  const groups = (part: string) =>
    part === "" ? [] : part.split(":").flatMap((g) => (g.includes(".") ? [g, ""] : [g]));
  const h = groups(head);
  if (tail === undefined) return h;
  const t = groups(tail);
  return [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill("0"), ...t];
}

/**
 * The key a client is counted under: an IPv4 address as is, an IPv6 address by its /64
 * prefix (one host is routinely given a whole /64, so per-address counts would not bound
 * it), an IPv4-mapped IPv6 address as its IPv4 address. "" when the socket has no address.
 */
export function clientKey(address: string | undefined): string {
  if (!address) return "";
  const bare = address.replace(/%.*$/, ""); // a link-local zone id names our interface
  const v4 = mappedV4(bare);
  if (v4) return v4;
  if (isIP(bare) !== 6) return bare;
  const prefix = v6Groups(bare.toLowerCase())
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""));
  return `${prefix.join(":")}::/64`;
}

/** True for addresses of this host's loopback interface (127.0.0.0/8, ::1, mapped 127.x). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = mappedV4(address) ?? address;
  return v4 === "::1" || (isIP(v4) === 4 && v4.startsWith("127."));
}
