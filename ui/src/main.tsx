import { effect } from "@preact/signals";
import { render } from "preact";
import { App } from "./App";
import { appInfo, start } from "./state/store";
import { installTestHooks } from "./testHooks";
import "./styles.css";

effect(() => {
  if (appInfo.value?.testHooks) installTestHooks();
});

// The page never navigates away: links (chat links) are opened by their own click handlers
// (the desktop's system browser, or a new browser tab); this catches any other way a link
// could be followed.
const stayHere = (e: Event) => {
  if (e.target instanceof Element && e.target.closest("a[href]")) e.preventDefault();
};
document.addEventListener("click", stayHere);
document.addEventListener("auxclick", stayHere);
document.addEventListener("dragstart", stayHere);

const root = document.getElementById("app");
if (root) render(<App />, root);
void start();
