"""One configuration system for every entry point: nested dataclasses, YAML files, CLI overrides.

    cfg = parse_or_exit(TrainConfig, description=__doc__, prog="python -m apps.x.train")
    save_resolved(cfg, run_dir)            # run_dir/config.yaml, reloadable with --config

Resolution order: field defaults < each `--config FILE` in order < each `key=value` /
`--key value` override in order. Mistakes raise ConfigError with one line naming the file (and
line) or the override; `parse_or_exit` turns that into `prog: error: ...` on stderr and exit 2.
See docs/configuration.md.
"""

from shared.config.cli import help_text, parse, parse_or_exit
from shared.config.load import from_dict, load_yaml, resolve
from shared.config.save import save_resolved, to_dict, to_yaml
from shared.config.schema import ConfigError

__all__ = [
    "ConfigError",
    "from_dict",
    "help_text",
    "load_yaml",
    "parse",
    "parse_or_exit",
    "resolve",
    "save_resolved",
    "to_dict",
    "to_yaml",
]
