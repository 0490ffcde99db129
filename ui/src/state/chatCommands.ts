// What a line typed into the chat input means (pure): a message, or a slash command. The
// store carries the result out (store.ts `submitChat`); errors and /help show under the input.

import type { ModerationView } from "../bindings/ModerationView";

/** The server's limit on a message, in bytes of UTF-8 once trimmed (docs/protocol.md). */
export const MAX_MESSAGE_BYTES = 4096;
/** The server's limit on a removal reason, in characters. */
export const MAX_REASON_CHARS = 200;

export interface CommandPerson {
  id: string;
  name: string;
  handRaised: boolean;
}

export interface CommandContext {
  /** Our display name (commands cannot name ourselves). */
  selfName: string;
  /** Everyone else in the room. */
  others: readonly CommandPerson[];
  moderator: boolean;
  handRaised: boolean;
  locked: boolean;
  /** The recipient picked for plain messages (null: everyone). */
  to: string | null;
}

export type ChatCommand =
  /** Nothing to do (blank input). */
  | { kind: "empty" }
  | { kind: "send"; text: string; to: string | null }
  | { kind: "hand"; raised: boolean }
  | { kind: "moderate"; peerId: string; name: string; action: ModerationView }
  | { kind: "remove"; peerId: string; name: string; reason: string | null }
  | { kind: "lock"; locked: boolean }
  | { kind: "end" }
  /** Show `text` under the input. */
  | { kind: "help"; text: string }
  /** Show `message` under the input; nothing is sent. */
  | { kind: "error"; message: string };

interface CommandSpec {
  names: readonly string[];
  usage: string;
  what: string;
  moderator: boolean;
}

export const COMMANDS: readonly CommandSpec[] = [
  { names: ["help"], usage: "/help", what: "show this list", moderator: false },
  { names: ["msg"], usage: "/msg NAME text", what: "send NAME a private message", moderator: false },
  { names: ["hand"], usage: "/hand", what: "raise or lower your hand", moderator: false },
  { names: ["mute"], usage: "/mute NAME", what: "mute NAME's microphone", moderator: true },
  { names: ["stopvideo"], usage: "/stopvideo NAME", what: "turn NAME's camera off", moderator: true },
  { names: ["lower"], usage: "/lower NAME", what: "lower NAME's hand", moderator: true },
  {
    names: ["remove", "kick"],
    usage: "/remove NAME [reason]",
    what: "remove NAME from the room (also /kick)",
    moderator: true,
  },
  { names: ["lock"], usage: "/lock", what: "lock the room: no one new can join", moderator: true },
  { names: ["unlock"], usage: "/unlock", what: "unlock the room", moderator: true },
  { names: ["end"], usage: "/end", what: "end the meeting for everyone", moderator: true },
];

/** The /help text for a moderator or not. */
export function helpText(moderator: boolean): string {
  const line = (c: CommandSpec) => `${c.usage} — ${c.what}`;
  const lines = COMMANDS.filter((c) => moderator || !c.moderator).map(line);
  if (!moderator) {
    const mod = COMMANDS.filter((c) => c.moderator).map((c) => `/${c.names[0]}`);
    lines.push(`Moderators also have ${mod.join(", ")}.`);
  }
  lines.push(
    'Names with spaces can be typed as they are, or in double quotes: /msg "Ada L" hi.',
    "Start a message with // to send text that begins with /.",
  );
  return lines.join("\n");
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

function message(text: string, to: string | null): ChatCommand {
  if (text.length === 0) return { kind: "empty" };
  const bytes = utf8Length(text);
  if (bytes > MAX_MESSAGE_BYTES) {
    return {
      kind: "error",
      message: `This message is too long (${bytes} bytes; at most ${MAX_MESSAGE_BYTES}). Split it up.`,
    };
  }
  return { kind: "send", text, to };
}

const error = (text: string): ChatCommand => ({ kind: "error", message: text });

/** Parses a line of the chat input. */
export function parseChatInput(input: string, ctx: CommandContext): ChatCommand {
  const line = input.trim();
  if (!line.startsWith("/")) return message(line, ctx.to);
  if (line.startsWith("//")) return message(line.slice(1), ctx.to);

  const match = /^\/(\S+)\s*([\s\S]*)$/.exec(line);
  const word = (match?.[1] ?? "").toLowerCase();
  const rest = match?.[2] ?? "";
  const spec = COMMANDS.find((c) => c.names.includes(word));
  if (!spec) {
    return error(
      `Unknown command /${word}. Type /help for the list, or start with // to send text beginning with /.`,
    );
  }
  if (spec.moderator && !ctx.moderator) return error(`Only a moderator can use /${word}.`);

  switch (spec.names[0]) {
    case "help":
      return { kind: "help", text: helpText(ctx.moderator) };
    case "hand":
      return { kind: "hand", raised: !ctx.handRaised };
    case "lock":
      return ctx.locked ? error("The room is already locked.") : { kind: "lock", locked: true };
    case "unlock":
      return ctx.locked ? { kind: "lock", locked: false } : error("The room is not locked.");
    case "end":
      return { kind: "end" };
  }

  const target = findPerson(rest, ctx, word, spec.usage);
  if ("error" in target) return error(target.error);
  const { person, after } = target;
  switch (spec.names[0]) {
    case "msg":
      if (after.length === 0) return error(`Write the message after the name: ${spec.usage}`);
      return message(after, person.id);
    case "mute":
      return { kind: "moderate", peerId: person.id, name: person.name, action: "mute_microphone" };
    case "stopvideo":
      return { kind: "moderate", peerId: person.id, name: person.name, action: "stop_camera" };
    case "lower":
      if (!person.handRaised) return error(`${person.name}'s hand is not raised.`);
      return { kind: "moderate", peerId: person.id, name: person.name, action: "lower_hand" };
    default: {
      // remove / kick
      if ([...after].length > MAX_REASON_CHARS) {
        return error(`The reason is too long (at most ${MAX_REASON_CHARS} characters).`);
      }
      return { kind: "remove", peerId: person.id, name: person.name, reason: after || null };
    }
  }
}

type Found = { person: CommandPerson; after: string } | { error: string };

const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * The person named at the start of `rest`: a double-quoted name, or else the longest display
 * name (case-insensitive) that `rest` starts with, followed by a space or the end. The rest of
 * the line comes back as `after`.
 */
function findPerson(rest: string, ctx: CommandContext, word: string, usage: string): Found {
  if (rest.length === 0) return { error: `Say who: ${usage}` };
  const self: CommandPerson = { id: "", name: ctx.selfName.trim(), handRaised: ctx.handRaised };
  const everyone = [...ctx.others.filter((p) => p.name.trim().length > 0), self];

  let name: string;
  let matches: CommandPerson[];
  let after: string;
  if (rest.startsWith('"')) {
    const close = rest.indexOf('"', 1);
    if (close < 0) return { error: "The name has no closing double quote." };
    name = rest.slice(1, close).trim();
    after = rest.slice(close + 1);
    if (after.length > 0 && !/^\s/.test(after)) {
      return { error: "Put a space after the quoted name." };
    }
    matches = everyone.filter((p) => p.name.length > 0 && sameName(p.name.trim(), name));
  } else {
    let longest = 0;
    matches = [];
    for (const p of everyone) {
      const n = p.name.trim();
      if (n.length === 0 || n.length < longest) continue;
      const next = rest[n.length];
      if (!sameName(rest.slice(0, n.length), n) || (next !== undefined && !/\s/.test(next))) continue;
      if (n.length > longest) matches = [];
      longest = n.length;
      matches.push(p);
    }
    name = longest > 0 ? rest.slice(0, longest) : (/^\S+/.exec(rest)?.[0] ?? rest);
    after = rest.slice(longest);
  }
  after = after.trim();

  const others = matches.filter((p) => p !== self);
  if (others.length === 1) return { person: others[0]!, after };
  if (others.length > 1) {
    return {
      error: `${others.length} people are called "${others[0]!.name}". Use the People tab to pick one.`,
    };
  }
  if (matches.includes(self)) return { error: `You can't use /${word} on yourself.` };
  const lower = name.toLowerCase();
  const close = ctx.others.filter((p) => p.name.trim().toLowerCase().startsWith(lower));
  const hint = close.length === 1 ? ` Did you mean ${close[0]!.name.trim()}?` : "";
  return { error: `No one called "${name}" is in the room.${hint}` };
}
