import { effect } from "@preact/signals";
import { render } from "preact";
import { App } from "./App";
import { appInfo, start } from "./state/store";
import { installTestHooks } from "./testHooks";
import "./styles.css";

effect(() => {
  if (appInfo.value?.testHooks) installTestHooks();
});

const root = document.getElementById("app");
if (root) render(<App />, root);
void start();
