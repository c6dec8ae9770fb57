"""A config file holding a NUL byte is refused with a clear error naming the file and the
place, not a traceback from the YAML reader (issue 12)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from common.yamlcheck import ConfigError
from strategies.config import load_config_dir

SHIPPED = Path(__file__).resolve().parents[1] / "config"


def test_a_nul_byte_in_risk_yaml_names_the_file_line_and_column(tmp_path: Path) -> None:
    directory = tmp_path / "config"
    shutil.copytree(SHIPPED, directory)
    risk = directory / "risk.yaml"
    lines = risk.read_bytes().splitlines(keepends=True)
    risk.write_bytes(b"".join(lines[:2]) + b"ab\x00cd\n" + b"".join(lines[2:]))
    with pytest.raises(ConfigError) as caught:
        load_config_dir(directory)
    assert caught.value.problems == [
        f"{risk} — character U+0000 is not allowed in a YAML file (line 3, column 3): "
        "a damaged or binary file?"
    ]
