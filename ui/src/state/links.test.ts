import { describe, expect, it } from "vitest";
import { linkify, safeHref, type Segment } from "./links";

const links = (text: string) =>
  linkify(text)
    .filter((s): s is Extract<Segment, { type: "link" }> => s.type === "link")
    .map((s) => s.href);

describe("linkify", () => {
  it("finds http, https and mailto links", () => {
    expect(linkify("Slides: https://example.org/deck.pdf")).toEqual([
      { type: "text", text: "Slides: " },
      { type: "link", text: "https://example.org/deck.pdf", href: "https://example.org/deck.pdf" },
    ]);
    expect(links("http://10.0.0.5:8080/a?b=c#d and mailto:ada@example.org")).toEqual([
      "http://10.0.0.5:8080/a?b=c#d",
      "mailto:ada@example.org",
    ]);
  });

  it("leaves sentence punctuation out of a link", () => {
    expect(links("Go to https://example.org.")).toEqual(["https://example.org"]);
    expect(links("(see https://example.org/a)")).toEqual(["https://example.org/a"]);
    expect(links("https://en.wikipedia.org/wiki/Ada_(language), ok?")).toEqual([
      "https://en.wikipedia.org/wiki/Ada_(language)",
    ]);
  });

  it("keeps markup as text and links nothing but the allowed schemes", () => {
    const evil = "<img src=x onerror=alert(1)><b>bold</b><script>x</script>";
    expect(linkify(evil)).toEqual([{ type: "text", text: evil }]);
    expect(links("javascript:alert(1) file:///etc/passwd data:text/html,x")).toEqual([]);
    expect(links('<a href="https://x.org">x</a>')).toEqual(["https://x.org"]);
  });

  it("gives the text back when the parts are joined", () => {
    for (const text of ["a https://x.org/b. c", "", "line 1\nhttps://x.org\n\tend", "http:// broken"]) {
      expect(linkify(text).map((s) => s.text).join("")).toBe(text);
    }
  });
});

describe("safeHref", () => {
  it("accepts web and mail addresses only", () => {
    expect(safeHref("https://example.org")).toBe("https://example.org");
    expect(safeHref("mailto:someone@example.org")).toBe("mailto:someone@example.org");
    expect(safeHref("mailto:")).toBeNull();
    expect(safeHref("javascript:alert(1)")).toBeNull();
    expect(safeHref("http://")).toBeNull();
  });
});
