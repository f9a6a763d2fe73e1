"""aligned-generators core: preference losses, records, pair builders, rewards and training parts.

The core never imports an app; apps compose these parts.
"""

__version__ = "0.1.0"
