/**
 * The console's page shell and small formatting helpers. Every page is server-rendered HTML
 * (hono/html escapes every interpolated value); the client script (src/console-client) only
 * enhances it: live refresh of `<main>` on server-sent events, confirmations, filters.
 *
 * `<main data-live="…">` names what the page shows (fleet, group:<name>, agent:<uid>,
 * validation) so the client knows which change batches concern it. A request with
 * `X-Console-Partial: 1` gets only the inside of `<main>` (the live refresh).
 */
import type { Context } from "hono";
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { AssetNames } from "./assets.js";

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

export interface PageOptions {
  title: string;
  /** The nav entry shown as current. */
  nav: "fleet" | "group" | "agent" | "validation" | "login";
  live?: string;
  assets: AssetNames;
  /** Show the log-out button (access needs a token). */
  session: boolean;
}

const NAV = [
  ["fleet", "/", "Fleet"],
  ["group", "/groups", "Groups"],
  ["validation", "/validation", "Validation"],
] as const;

/** Renders a full page, or only the inside of `<main>` for a live refresh. */
export function page(c: Context, o: PageOptions, body: Html, status: 200 | 401 | 404 = 200) {
  if (c.req.header("x-console-partial") === "1") return c.html(body, status);
  c.header("Cache-Control", "no-store");
  return c.html(
    html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} · opamp-gitops</title>
${o.assets.style ? html`<link rel="stylesheet" href="${o.assets.style}">` : ""}
${o.assets.script ? html`<script src="${o.assets.script}" defer></script>` : ""}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<nav aria-label="Console">
<span class="brand">opamp-gitops</span>
<ul>
${NAV.map(
  ([key, href, label]) =>
    html`<li><a href="${href}"${o.nav === key ? html` aria-current="page"` : ""}>${label}</a></li>`,
)}
</ul>
${
  o.session
    ? html`<form method="post" action="/logout" class="logout"><button type="submit">Log out</button></form>`
    : ""
}
</nav>
</header>
<main id="main" tabindex="-1"${o.live ? html` data-live="${o.live}"` : ""}>${body}</main>
<div id="announce" class="visually-hidden" role="status" aria-live="polite"></div>
</body>
</html>`,
    status,
  );
}

/** The first 12 hex digits of a hash or commit. */
export const short = (h: string | null | undefined) => (h ? h.slice(0, 12) : "—");

/** A time as an ISO string with a relative hint, in a `<time>` element. */
export function when(ms: number | null | undefined) {
  if (!ms) return html`—`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.replace("T", " ").slice(0, 19)}Z</time>`;
}

/** A progress bar (native, so screen readers read it) with its figures as text. */
export function progress(label: string, done: number, total: number) {
  return html`<progress aria-label="${label}" max="${Math.max(total, 1)}" value="${done}">${done} of ${total}</progress>`;
}
