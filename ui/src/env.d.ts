/** The app's version (ui/package.json), set by Vite's `define`. */
declare const __APP_VERSION__: string;
