/**
 * Types of `bufferutil` (the WebSocket masking helper `ws` itself uses; native where its
 * prebuilt binary loads, else plain JavaScript), for the parts this project calls.
 */
declare module "bufferutil" {
  const bufferUtil: {
    /** XORs `buffer` in place with the 4-byte `mask` (RFC 6455 §5.3). */
    unmask(buffer: Uint8Array, mask: Uint8Array): void;
  };
  export default bufferUtil;
}
