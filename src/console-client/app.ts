/**
 * The console's client (bundled by scripts/build-console.mjs): pages are complete without it;
 * it adds
 * - live refresh: subscribes to `/api/v1/events` and, when a change batch concerns the page
 *   (`<main data-live>`), re-fetches the page's `<main>` (X-Console-Partial: 1), at most once
 *   per second, keeping focus where it was;
 * - rollout controls: a form with `data-action` asks for confirmation (`data-confirm`), posts
 *   `{}` as JSON to its action (same origin: the cookie and the Origin header go along) and
 *   announces the outcome in the page's status region.
 */

interface ChangeBatch {
  groups: string[];
  agents: string[];
  agentsOverflow: boolean;
  sync: boolean;
}

const MIN_REFRESH_MS = 1000;
const main = document.getElementById("main");
let refreshing = false;
let again = false;
let last = 0;

function announce(text: string): void {
  const target = document.getElementById("action-result") ?? document.getElementById("announce");
  if (target) target.textContent = text;
}

function concerns(live: string, b: ChangeBatch): boolean {
  if (live === "fleet") return true;
  if (live === "validation") return b.sync;
  if (live.startsWith("group:")) return b.sync || b.groups.includes(live.slice(6));
  if (live.startsWith("agent:"))
    return b.agentsOverflow || b.groups.length > 0 || b.agents.includes(live.slice(6));
  return false;
}

async function refresh(): Promise<void> {
  if (!main) return;
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  const wait = last + MIN_REFRESH_MS - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  try {
    const res = await fetch(location.href, {
      headers: { "X-Console-Partial": "1" },
      credentials: "same-origin",
    });
    if (res.redirected || res.status === 401) {
      location.reload();
      return;
    }
    const text = await res.text();
    const focused = document.activeElement?.id;
    const result = document.getElementById("action-result")?.textContent ?? "";
    main.innerHTML = text;
    if (focused) document.getElementById(focused)?.focus();
    const region = document.getElementById("action-result");
    if (region && result) region.textContent = result;
    main.dispatchEvent(new CustomEvent("console:refreshed", { bubbles: true }));
  } catch {
    // The next change batch retries.
  } finally {
    last = Date.now();
    refreshing = false;
    if (again) {
      again = false;
      void refresh();
    }
  }
}

document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-action")) return;
  ev.preventDefault();
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) return;
  const label = form.querySelector("button")?.textContent ?? "action";
  void fetch(form.getAttribute("action") ?? "", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: "{}",
    credentials: "same-origin",
  })
    .then(async (res) => {
      const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
      announce(
        res.ok ? `${label}: done.` : `${label} refused: ${body.error?.message ?? res.status}`,
      );
      await refresh();
    })
    .catch(() => announce(`${label}: the service did not answer.`));
});

const live = main?.dataset.live;
if (live && "EventSource" in window) {
  const events = new EventSource("/api/v1/events");
  events.addEventListener("changes", (ev) => {
    try {
      if (concerns(live, JSON.parse((ev as MessageEvent<string>).data) as ChangeBatch))
        void refresh();
    } catch {
      // A garbled event: ignore it.
    }
  });
  document.documentElement.dataset.live = "on";
}
