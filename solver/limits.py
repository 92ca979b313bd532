"""Documented input limits shared by the solver, the service and the CLI."""

MAX_IMAGE_SIDE = 2**20
"""Largest accepted image side in pixels."""

MAX_LAYERS = 10_000
"""Largest accepted number of layers (or graph nodes) in one architecture."""

MAX_FAN_IN = 64
"""Largest number of inputs of one merge node."""

MAX_JUMP = 2**64
"""Largest accepted jump (product of strides, in input pixels): far beyond any image side (2^20), it
keeps the exact integers small (padded stride chains would otherwise grow them without bound)."""

MAX_KERNEL_SIZE = 1024
"""Largest accepted kernel size of any layer."""

MAX_STRIDE = 1024
"""Largest accepted stride."""

MAX_DILATION = 1024
"""Largest accepted dilation."""

MAX_PADDING = 1024
"""Largest accepted explicit padding."""

MAX_CHANNELS = 1_000_000
"""Largest accepted channel count (out_channels, in_channels, num_classes)."""

MAX_NAME_LENGTH = 128
"""Longest accepted layer or node name."""

MAX_FRACTION_DENOMINATOR = 1_000_000
"""Largest accepted denominator of a minimum c-value given as p/q."""

PLAN_KERNEL_SIZES = range(3, 32, 2)
"""Kernel sizes the planner accepts: odd, 3 to 31 (odd kernels keep 'same' padding symmetric)."""

PLAN_MIN_C_VALUE_FLOOR = "1/64"
"""Smallest minimum c-value the planner accepts (smaller t gives thousands of layers per stage)."""

MAX_EXPANSION = 16
"""Largest expansion factor of bottleneck and inverted-residual blocks."""

MAX_BUDGET = 2**53 - 1
"""Largest accepted max_flops or max_params: JSON's safe-integer range (every integer up to it is exact as a
double, so a JSON Schema validator comparing as floats agrees with the server on the bound)."""
