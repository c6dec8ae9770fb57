"""System check: the YAML configuration must be valid before anything starts."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register


@register("scalpradar")
def check_yaml_config(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from strategies.config import ConfigError, load_config_dir

    try:
        load_config_dir()
    except ConfigError as exc:
        return [Error(line, id="scalpradar.E001") for line in exc.problems]
    return []
