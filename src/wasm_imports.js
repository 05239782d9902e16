// Host functions the standalone Wasm module imports from `env` (Emscripten JS library syntax,
// used only to declare them to the linker); web/engine.js supplies the real ones.
// addToLibrary is the newer releases' name for mergeInto (Debian's 3.1.6 has only the latter).
(typeof addToLibrary === 'function' ? addToLibrary : (lib) => mergeInto(LibraryManager.library, lib))({
  wt_clock_ms: function () { return performance.now(); },
});
