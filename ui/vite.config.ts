import { defineConfig } from "vitest/config";

// Served by the Vite dev server in `cargo tauri dev` (devUrl http://127.0.0.1:5173) and from
// ui/dist by Tauri's custom protocol in production, hence the relative base.
export default defineConfig({
  base: "./",
  clearScreen: false,
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  // JSX without babel: Oxc with Preact's automatic runtime (mirrors tsconfig.json).
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", emptyOutDir: true },
  // The render worker imports modules, so it is built as an ES module worker.
  worker: { format: "es" },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
