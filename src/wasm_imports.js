// Host functions the standalone Wasm module imports from `env` (Emscripten JS library syntax,
// used only to declare them to the linker); web/engine.js supplies the real ones.
mergeInto(LibraryManager.library, {
  wt_clock_ms: function () { return performance.now(); },
});
