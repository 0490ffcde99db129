// The page's address in the browser (pure; routing.test.ts): `/` is the lobby, `/r/ROOM` the
// lobby for ROOM, and an invite link `/r/ROOM#token=JWT` carries an invitation. The token is
// read once and then taken out of the visible address (`history.replaceState`), so it does not
// end up in screenshots, bookmarks or the history list.

import { JWT } from "../../state/invite";

export interface Route {
  /** The room in the path, decoded (null: none, the lobby at `/`). */
  room: string | null;
  /** The invitation in the fragment (or, from hand-made links, the query). */
  token: string | null;
  /** A `token=` was there but is not a whole JWT (the link was copied in part). */
  incompleteToken: boolean;
}

const ROOM_PATH = /^\/r\/([^/]+)\/?$/;

/** What `pathname`, `search` and `hash` of the page's address say. */
export function parseRoute(pathname: string, search: string, hash: string): Route {
  let room: string | null = null;
  const m = ROOM_PATH.exec(pathname);
  if (m) {
    try {
      room = decodeURIComponent(m[1]!).trim() || null;
    } catch {
      room = null;
    }
  }
  const raw =
    new URLSearchParams(hash.replace(/^#/, "")).get("token") ??
    new URLSearchParams(search.replace(/^\?/, "")).get("token");
  if (raw === null) return { room, token: null, incompleteToken: false };
  const token = raw.trim().replace(/\/+$/, "");
  return JWT.test(token)
    ? { room, token, incompleteToken: false }
    : { room, token: null, incompleteToken: true };
}

/** The address of a room's page (what the bar shows once a room is chosen or joined). */
export function roomPath(room: string): string {
  return `/r/${encodeURIComponent(room.trim())}`;
}

/** The address to show instead of `pathname` + `search` + `hash`: without the token. */
export function withoutToken(pathname: string, search: string): string {
  const query = new URLSearchParams(search.replace(/^\?/, ""));
  query.delete("token");
  const rest = query.toString();
  return rest ? `${pathname}?${rest}` : pathname;
}

/** The signaling socket of the server that served the page: same origin, `/ws`. */
export function pageServerUrl(protocol: string, host: string): string {
  return `${protocol === "https:" ? "wss" : "ws"}://${host}/ws`;
}
