/**
 * Real Git repositories for tests, made with the `git` command line in temp directories: a
 * work tree to commit in, and bare repositories served as remotes.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "Test",
  GIT_AUTHOR_EMAIL: "test@example.com",
  GIT_COMMITTER_NAME: "Test",
  GIT_COMMITTER_EMAIL: "test@example.com",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "commit.gpgsign=false", ...args], {
    cwd,
    env: ENV,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

export function tempDir(prefix = "opamp-gitops-sync-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export class TestRepo {
  readonly dir: string;

  constructor(dir = tempDir()) {
    this.dir = dir;
    git(dir, "init", "-q", "-b", "main");
  }

  write(path: string, content: string | Uint8Array): this {
    const full = join(this.dir, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
    return this;
  }

  /** Writes every file of `files` (path → content). */
  writeAll(files: Record<string, string>): this {
    for (const [p, c] of Object.entries(files)) this.write(p, c);
    return this;
  }

  remove(path: string): this {
    rmSync(join(this.dir, path), { recursive: true, force: true });
    return this;
  }

  symlink(path: string, target: string): this {
    const full = join(this.dir, path);
    mkdirSync(dirname(full), { recursive: true });
    symlinkSync(target, full);
    return this;
  }

  /** Stages everything and commits; returns the commit id. */
  commit(message = "change"): string {
    git(this.dir, "add", "-A");
    git(this.dir, "commit", "-q", "--allow-empty", "-m", message);
    return this.head();
  }

  head(ref = "HEAD"): string {
    return git(this.dir, "rev-parse", ref);
  }

  git(...args: string[]): string {
    return git(this.dir, ...args);
  }
}

/** A bare repository (a "remote"), optionally with a name under `root`. */
export function bareRepo(root = tempDir(), name = "fleet.git"): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  git(dir, "init", "-q", "--bare", "-b", "main");
  return dir;
}

export function cleanup(...dirs: string[]): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
