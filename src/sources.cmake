# The engine's C sources, one list for the top-level build and the sanitizer build in tests/fuzz.
# The includer sets WT_ROOT to the repository root.
set(WT_SOURCE_NAMES optim augment avgpool batchnorm bench_peak checkpoint conv2d conv_kernels crossentropy data dropout gelu globalpool
    kernels linear maxpool model relu rng shape_ops spec status whiten)
# What the double-precision gradient check builds: the layers and what they call.
set(WT_LAYER_NAMES avgpool batchnorm conv2d conv_kernels crossentropy gelu globalpool kernels linear maxpool relu status)
list(TRANSFORM WT_SOURCE_NAMES PREPEND "${WT_ROOT}/src/" OUTPUT_VARIABLE WT_SOURCES)
list(TRANSFORM WT_SOURCES APPEND ".c")
list(TRANSFORM WT_LAYER_NAMES PREPEND "${WT_ROOT}/src/" OUTPUT_VARIABLE WT_LAYER_SOURCES)
list(TRANSFORM WT_LAYER_SOURCES APPEND ".c")
