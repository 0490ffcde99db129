import { describe, expect, it } from "vitest";
import { ViewSizeBook } from "./viewSizes";

describe("ViewSizeBook", () => {
  it("sends changes once, in messages of at most 64, ordered by track", () => {
    const book = new ViewSizeBook();
    book.set("p", "t2", 640, 360);
    book.set("p", "t1", 320, 0);
    expect(book.takeChanges()).toEqual([
      [
        { peer_id: "p", track_id: "t1", width: 0, height: 0 },
        { peer_id: "p", track_id: "t2", width: 640, height: 360 },
      ],
    ]);
    book.set("p", "t2", 640, 360);
    expect(book.takeChanges()).toEqual([]);
    for (let i = 0; i < 70; i++) book.set("q", `v${String(i).padStart(2, "0")}`, 100 + i, 100);
    const batches = book.takeChanges();
    expect(batches.map((b) => b.length)).toEqual([64, 6]);
  });

  it("tells a new session again the sizes of the tracks it still has, and forgets the rest", () => {
    const book = new ViewSizeBook();
    book.set("p", "kept", 640, 360);
    book.set("p", "gone", 320, 180);
    book.takeChanges();
    book.newSession(new Set(["kept"]));
    expect(book.takeChanges()).toEqual([[{ peer_id: "p", track_id: "kept", width: 640, height: 360 }]]);
  });

  it("re-sends a size when its track is announced again, and forgets removed tracks", () => {
    const book = new ViewSizeBook();
    book.set("p", "t", 640, 360);
    book.takeChanges();
    book.trackAdded("t");
    expect(book.takeChanges()).toHaveLength(1);
    book.trackRemoved("t");
    expect(book.takeChanges()).toEqual([]);
  });
});
