// The people panel's list and the chat's recipients (pure, derived from the room state).

import type { PeerView } from "../bindings/PeerView";
import { tilesOf, type RoomState, type TileModel } from "./room";

/** A person as the people list shows them: a tile's facts (mic, camera, speaking, hand). */
export type Person = TileModel;

/**
 * Everyone, ourselves included: raised hands first, earliest first; then us; then who spoke
 * lately ("who is talking": `RoomState.recentSpeakers`, which changes only when someone new
 * starts speaking, so rows do not jump with every loudness change); then the others in the
 * order they came.
 */
export function peopleOf(state: RoomState, selfName: string): Person[] {
  const tiles = tilesOf(state, selfName);
  const raised = tiles
    .filter((t) => t.handRaisedAt !== null)
    .sort((a, b) => a.handRaisedAt! - b.handRaisedAt!);
  const rest = tiles.filter((t) => t.handRaisedAt === null);
  const rank = (t: Person): number => {
    if (t.isSelf) return -1;
    const i = state.recentSpeakers.indexOf(t.peerId);
    return i < 0 ? state.recentSpeakers.length : i;
  };
  // A stable sort: the others who did not speak lately stay in the order they came.
  return [...raised, ...rest.sort((a, b) => rank(a) - rank(b))];
}

/** How many hands are up (ours included). */
export function raisedHandCount(state: RoomState): number {
  return (
    state.peers.filter((p) => p.handRaisedAt !== null).length + (state.handRaisedAt === null ? 0 : 1)
  );
}

/** The place of a raised hand in the queue: 1 for the earliest. */
export function handPosition(people: readonly Person[], id: string): number | null {
  const raised = people.filter((p) => p.handRaisedAt !== null);
  const i = raised.findIndex((p) => p.peerId === id);
  return i < 0 ? null : i + 1;
}

export interface Recipient {
  id: string;
  name: string;
}

/** Who a private message can go to: everyone else, by name. */
export function recipientsOf(peers: readonly PeerView[]): Recipient[] {
  return peers
    .map((p) => ({ id: p.id, name: p.name.trim() || "Unnamed" }))
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: "base" }));
}

/** The chosen recipient if still in the room, else null (everyone). */
export function effectiveRecipient(peers: readonly PeerView[], chosen: string | null): string | null {
  return chosen !== null && peers.some((p) => p.id === chosen) ? chosen : null;
}
