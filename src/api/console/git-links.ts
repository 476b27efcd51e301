/**
 * Links from the console to the Git host's pages: a commit, or a file at a line, when the
 * repository's remote is on GitHub, GitLab or Gitea (recognised by host name: github.com,
 * a host with "gitlab" in it, a host with "gitea" in it or codeberg.org). Credentials in the
 * URL are dropped; other remotes (a local path, an unknown host) get no link.
 */
type Flavor = "github" | "gitlab" | "gitea";

export interface GitWeb {
  commit(sha: string): string;
  file(sha: string, path: string, line?: number): string;
}

function webBase(remote: string): { base: string; flavor: Flavor } | undefined {
  let url: URL;
  try {
    // scp-like "git@host:owner/repo.git" → https://host/owner/repo
    const scp = /^[\w.-]+@([\w.-]+):(?!\/)(.+)$/.exec(remote);
    url = new URL(scp ? `https://${scp[1]}/${scp[2]}` : remote);
  } catch {
    return undefined;
  }
  if (!["https:", "http:", "ssh:", "git:"].includes(url.protocol)) return undefined;
  const host = url.hostname.toLowerCase();
  const flavor: Flavor | undefined =
    host === "github.com" || host.endsWith(".github.com")
      ? "github"
      : host.includes("gitlab")
        ? "gitlab"
        : host.includes("gitea") || host === "codeberg.org"
          ? "gitea"
          : undefined;
  if (!flavor) return undefined;
  const path = url.pathname.replace(/\/+$/, "").replace(/\.git$/, "");
  if (!/^\/[\w.-]+(\/[\w.-]+)+$/.test(path)) return undefined;
  return { base: `https://${url.host.replace(/:\d+$/, "")}${path}`, flavor };
}

/** Link builders for `remote`, or undefined when its host is not one we know. */
export function gitWeb(remote: string | undefined): GitWeb | undefined {
  const web = remote ? webBase(remote) : undefined;
  if (!web) return undefined;
  const { base, flavor } = web;
  const enc = (p: string) => p.split("/").map(encodeURIComponent).join("/");
  return {
    commit: (sha) => (flavor === "gitlab" ? `${base}/-/commit/${sha}` : `${base}/commit/${sha}`),
    file: (sha, path, line) => {
      const at = line ? `#L${line}` : "";
      const p = enc(path); // repository-relative, as findings name files
      if (flavor === "gitlab") return `${base}/-/blob/${sha}/${p}${at}`;
      if (flavor === "gitea") return `${base}/src/commit/${sha}/${p}${at}`;
      return `${base}/blob/${sha}/${p}${at}`;
    },
  };
}
