/**
 * "Did you mean" suggestions: the closest candidate to a misspelled name, by edit distance
 * (Damerau-Levenshtein, optimal string alignment) or by a shared prefix ("retry" →
 * "retry_on_failure", "tls_settings" → "tls").
 */

/** Edit distance between a and b (insert, delete, substitute, swap two adjacent characters). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const n = a.length;
  const m = b.length;
  if (n === 0) return m;
  if (m === 0) return n;
  // Three rolling rows: i-2, i-1, i.
  let prev2 = new Array<number>(m + 1).fill(0);
  let prev = Array.from({ length: m + 1 }, (_, j) => j);
  let cur = new Array<number>(m + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(
        (prev[j] as number) + 1,
        (cur[j - 1] as number) + 1,
        (prev[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, (prev2[j - 2] as number) + 1);
      cur[j] = v;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[m] as number;
}

/** The largest distance still counted as a likely typo of a word of this length. */
function tolerance(length: number): number {
  return length <= 3 ? 1 : length <= 6 ? 2 : 3;
}

/**
 * The candidate `name` most likely stands for, or undefined when none is close. Comparison is
 * case-insensitive; `name` itself is never suggested.
 */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    if (candidate === name) continue;
    const c = candidate.toLowerCase();
    const limit = tolerance(Math.max(lower.length, c.length));
    // Cheap rejections first: lengths too far apart, or no shared prefix to fall back on.
    const prefixRelated = c.startsWith(lower.slice(0, 3)) || lower.startsWith(c.slice(0, 3));
    if (Math.abs(lower.length - c.length) > limit && !prefixRelated) continue;
    let score = editDistance(lower, c);
    if (score > limit) {
      // A prefix relation on a word boundary: "retry" for "retry_on_failure", "tls_settings"
      // for "tls".
      const [short, long] = lower.length < c.length ? [lower, c] : [c, lower];
      if (short.length >= 3 && long.startsWith(short) && /[_./-]/.test(long[short.length] ?? ""))
        score = 10 + long.length - short.length;
      else continue;
    }
    if (score < bestScore || (score === bestScore && best !== undefined && candidate < best)) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}

/** `; did you mean "x"?` or the empty string. */
export function suggestion(name: string, candidates: Iterable<string>): string {
  const s = didYouMean(name, candidates);
  return s === undefined ? "" : `; did you mean "${s}"?`;
}
