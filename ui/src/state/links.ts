// Finding links in chat text (pure). The chat shows text as text nodes only; the links found
// here become <a> elements whose click asks the backend (`open_link`) to open them in the
// system browser.

export type Segment = { type: "text"; text: string } | { type: "link"; text: string; href: string };

/** Schemes that become links. Anything else (javascript:, file:, data:, …) stays text. */
const SCHEMES = new Set(["http:", "https:", "mailto:"]);

/** A candidate: a scheme, then anything up to whitespace or a character URLs do not contain. */
const CANDIDATE = /\b(?:https?:\/\/|mailto:)[^\s<>"'`]+/gi;

/** Characters that end a sentence rather than a URL when they come last. */
const TRAILING = /[.,;:!?*_~]$/;

const CLOSERS: Record<string, string> = { ")": "(", "]": "[", "}": "{" };

/** Trims punctuation that belongs to the sentence: "(see https://x.org/a)." → "https://x.org/a". */
function trimEnd(url: string): string {
  let s = url;
  for (;;) {
    if (TRAILING.test(s)) {
      s = s.slice(0, -1);
      continue;
    }
    const last = s[s.length - 1];
    const opener = last === undefined ? undefined : CLOSERS[last];
    if (opener !== undefined) {
      // Keep a closing bracket that closes one inside the URL (Wikipedia-style links).
      const opens = s.split(opener).length - 1;
      const closes = s.split(last!).length - 1;
      if (closes > opens) {
        s = s.slice(0, -1);
        continue;
      }
    }
    return s;
  }
}

/** The URL `text` stands for if it is one we open, else null. */
export function safeHref(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (!SCHEMES.has(url.protocol)) return null;
  if (url.protocol === "mailto:") return url.pathname.length > 0 ? text : null;
  return url.hostname.length > 0 ? text : null;
}

/** Splits chat text into plain text and links, in order; joined, the parts give `text` back. */
export function linkify(text: string): Segment[] {
  const out: Segment[] = [];
  let at = 0;
  const pushText = (s: string) => {
    if (s.length === 0) return;
    const last = out[out.length - 1];
    if (last?.type === "text") last.text += s;
    else out.push({ type: "text", text: s });
  };
  for (const match of text.matchAll(CANDIDATE)) {
    const start = match.index;
    const url = trimEnd(match[0]);
    const href = safeHref(url);
    if (href === null) continue;
    pushText(text.slice(at, start));
    out.push({ type: "link", text: url, href });
    at = start + url.length;
  }
  pushText(text.slice(at));
  return out;
}
