# The engine's C sources, one list for the top-level build and the sanitizer build in tests/fuzz.
# The includer sets WT_ROOT to the repository root.
set(WT_SOURCE_NAMES adam bench_peak checkpoint conv2d conv_kernels crossentropy data kernels linear maxpool model rng status)
# What the double-precision gradient check builds: the layers and what they call.
set(WT_LAYER_NAMES conv2d conv_kernels crossentropy kernels linear maxpool status)
list(TRANSFORM WT_SOURCE_NAMES PREPEND "${WT_ROOT}/src/" OUTPUT_VARIABLE WT_SOURCES)
list(TRANSFORM WT_SOURCES APPEND ".c")
list(TRANSFORM WT_LAYER_NAMES PREPEND "${WT_ROOT}/src/" OUTPUT_VARIABLE WT_LAYER_SOURCES)
list(TRANSFORM WT_LAYER_SOURCES APPEND ".c")
