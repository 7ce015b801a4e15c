"""Reading and writing the answer files of the official DiffThinker test folders (path.json, solutions.json,
metadata.json): one JSON object mapping an item key to its answer string. Shared by every task's
read_official / write_official so the error messages and the written bytes are the same everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from .base import TaskError


def read_answers_json(path: Path, example: str) -> dict[str, str]:
    """The ``{key: answer}`` object in ``path``, or ``{}`` when the file does not exist.

    ``example`` (e.g. ``'{"8_1_001": "UUR"}'``) is quoted in the error for a file that is not such an object.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TaskError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise TaskError(f"{path} must hold a JSON object mapping item keys to answer strings, e.g. {example}; "
                        f"got {str(data)[:120]}")
    return data


def write_answers_json(path: Path, answers: Mapping[str, str]) -> None:
    """Write ``answers`` sorted by key, indented like the published files, UTF-8, with a final newline."""
    Path(path).write_text(json.dumps(dict(sorted(answers.items())), indent=4, ensure_ascii=False) + "\n",
                          encoding="utf-8")
