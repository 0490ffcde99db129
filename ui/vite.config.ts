import { defineConfig } from "vitest/config";
import pkg from "./package.json" with { type: "json" };

// One build for both places the UI runs: the Tauri app (its own origin, `tauri://localhost/`;
// `cargo tauri dev` uses the Vite dev server on http://127.0.0.1:5173) and the browser, where
// videoroom-server serves ui/dist at `/` and the same index.html at `/r/ROOM`. Asset URLs are
// therefore absolute (`/assets/…`): a relative base would resolve them under `/r/`.
export default defineConfig({
  base: "/",
  clearScreen: false,
  define: { __APP_VERSION__: JSON.stringify(pkg.version) },
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  // JSX without babel: Oxc with Preact's automatic runtime (mirrors tsconfig.json).
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  // No inline scripts or styles in index.html (the server's CSP allows scripts from 'self'
  // only), and no `data:` module preloads.
  build: { outDir: "dist", emptyOutDir: true, assetsInlineLimit: 0, modulePreload: { polyfill: false } },
  // The render worker imports modules, so it is built as an ES module worker.
  worker: { format: "es" },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
