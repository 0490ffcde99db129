import { effect } from "@preact/signals";
import { render } from "preact";
import { App } from "./App";
import { appInfo, start } from "./state/store";
import { installTestHooks } from "./testHooks";
import "./styles.css";

effect(() => {
  if (appInfo.value?.testHooks) installTestHooks();
});

// The webview never navigates: links (chat links) are opened by the backend in the system
// browser by their own click handlers; this catches any other way a link could be followed.
const stayHere = (e: Event) => {
  if (e.target instanceof Element && e.target.closest("a[href]")) e.preventDefault();
};
document.addEventListener("click", stayHere);
document.addEventListener("auxclick", stayHere);
document.addEventListener("dragstart", stayHere);

const root = document.getElementById("app");
if (root) render(<App />, root);
void start();
