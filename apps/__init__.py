"""Domain apps built on the `shared` core, one sub-package per method family."""
