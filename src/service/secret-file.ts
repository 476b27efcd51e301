/**
 * Reading a secret file for a `${file:/path}` reference, confined to the secret folder
 * (`--secret-dir`): the reference's real path (symlinks and `..` resolved) must be under the
 * folder's real path, and the file opened must still be there (checked on the descriptor). It
 * must be a regular file of at most MAX_SECRET_FILE_BYTES (/dev/zero or a huge file must not
 * exhaust the service).
 */
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readlinkSync,
  readSync,
  realpathSync,
} from "node:fs";
import { dirname } from "node:path";
import { isWithin } from "../validate/index.js";
import { SecretRefError } from "./secret-ref-error.js";

/** Largest secret file read, in bytes: 64 KiB. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * Reads a regular file of at most MAX_SECRET_FILE_BYTES as UTF-8; throws otherwise. With
 * `dir` (a real path), the file opened must be inside it: checked on the open descriptor
 * (Linux /proc/self/fd), so a folder on the way swapped for a symlink after the caller's
 * realpath cannot lead out (O_NOFOLLOW guards only the last component).
 */
export function readSecretFile(path: string, dir?: string): string {
  // The path is a real path (resolved by the caller): a symlink put in its place is not
  // followed, and a FIFO does not block the open (it is then refused as no regular file).
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (dir !== undefined) {
      let opened: string | undefined;
      try {
        opened = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        // No /proc (not Linux): the realpath check before the open stands alone.
      }
      if (opened !== undefined && !isWithin(opened, dir))
        throw new SecretRefError(path, "it is outside the secret folder", "SECRET_REF_REFUSED");
    }
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error("not a regular file");
    if (stat.size > MAX_SECRET_FILE_BYTES)
      throw new Error(`${stat.size} bytes, more than ${MAX_SECRET_FILE_BYTES}`);
    const buf = Buffer.alloc(stat.size);
    const n = readSync(fd, buf, 0, stat.size, 0);
    return buf.subarray(0, n).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/**
 * The real paths of `path` and `dir` when the first is under the second; throws SecretRefError.
 * Messages reach the repository writer (PR gate, status branch): they name neither where a
 * path resolves to nor why it cannot be read (an errno tells whether a file exists).
 */
export function realPathWithin(
  ref: string,
  path: string,
  dir: string,
): { real: string; realDir: string } {
  let realDir: string;
  try {
    realDir = realpathSync(dir);
  } catch (err) {
    throw new SecretRefError(
      ref,
      `the secret folder ${dir} cannot be read (${(err as NodeJS.ErrnoException).code})`,
    );
  }
  const outside = () =>
    new SecretRefError(
      ref,
      `${ref} is refused: it resolves outside the secret folder ${dir} (--secret-dir)`,
      "SECRET_REF_REFUSED",
    );
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    // Missing: refused alike when the part of it that exists leads out of the folder, so that
    // the answer does not tell whether a file exists out there.
    let parent = dirname(path);
    for (;;) {
      try {
        const p = realpathSync(parent);
        if (p !== realDir && !isWithin(p, realDir)) throw outside();
        break;
      } catch (err) {
        if (err instanceof SecretRefError) throw err;
        if (dirname(parent) === parent) break;
        parent = dirname(parent);
      }
    }
    throw new SecretRefError(ref, `cannot read ${path}`);
  }
  if (!isWithin(real, realDir)) throw outside();
  return { real, realDir };
}
