/**
 * RESP encoding of one command whose arguments mix strings and Buffers, for the agent-write
 * connection (src/redis.ts corkPerTurn): the same bytes as ioredis' Command.toWritable in its
 * buffer mode, in fewer native calls. ioredis pushes every argument (and each Buffer's header
 * and trailer) as a piece of its own, measures each piece twice and writes each string into
 * the output with its own call: ~90 calls for an agent save (11 scalar fields and a few
 * encoded reports), 14 µs of each HSET in bench:serve's profile. Here runs of strings are
 * joined into one string before they are measured and written once, so a save costs one
 * write per Buffer argument plus one.
 */

/** What ioredis hands to a command's toWritable: its name and stringified arguments. */
export interface EncodableCommand {
  name: string;
  args: ReadonlyArray<string | Buffer>;
}

/**
 * The command as RESP: a string when no argument is a Buffer (as ioredis sends it), else one
 * Buffer. Arguments must be strings or Buffers (ioredis' stringifyArguments has run).
 */
export function encodeCommand({ name, args }: EncodableCommand): string | Buffer {
  let run = `*${args.length + 1}\r\n$${Buffer.byteLength(name)}\r\n${name}\r\n`;
  let parts: Array<string | Buffer> | undefined;
  for (const arg of args) {
    if (typeof arg === "string") {
      run += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
      continue;
    }
    parts ??= [];
    parts.push(`${run}$${arg.length}\r\n`, arg);
    run = "\r\n";
  }
  if (parts === undefined) return run;
  parts.push(run);
  let total = 0;
  for (const part of parts)
    total += typeof part === "string" ? Buffer.byteLength(part) : part.length;
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const part of parts)
    offset += typeof part === "string" ? out.write(part, offset) : part.copy(out, offset);
  return out;
}
