import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Served by Hearth: the page at `/`, every other file under `/console/` (server/console/route.py).
export default defineConfig({
  base: "/console/",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, assetsInlineLimit: 0, sourcemap: false },
});
