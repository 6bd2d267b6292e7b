"""First run (issue 19): install hints that fit how gansr was installed, shipped models that say
what they are for, the README's upscale example, and the packaged Set5 standing in for the shared
copy."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import pytest

from gansr.cli import main

REPO = Path(__file__).resolve().parents[1]


class FakeDistribution:
    """An installed distribution with a given PEP 610 ``direct_url.json`` (None: from an index)."""

    def __init__(self, direct_url: dict | None, requires: list[str] | None = None) -> None:
        self._direct_url = direct_url
        self.requires = requires or []

    def read_text(self, name: str) -> str | None:
        return json.dumps(self._direct_url) if name == "direct_url.json" and self._direct_url else None


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        ({"url": "file:///src/gansr", "dir_info": {"editable": True}}, "pip install -e '/src/gansr[serve]'"),
        ({"url": "file:///src/gansr", "dir_info": {}}, "pip install '/src/gansr[serve]'"),
        (
            {"url": "https://github.com/o/gansr.git", "vcs_info": {"vcs": "git", "commit_id": "abc"}},
            "pip install 'gansr[serve] @ git+https://github.com/o/gansr.git'",
        ),
        (
            {"url": "file:///tmp/gansr-0.1.0-py3-none-any.whl", "archive_info": {}},
            "pip install 'gansr[serve]'",
        ),
        (None, "pip install 'gansr[serve]'"),
    ],
)
def test_install_command_follows_how_gansr_was_installed(monkeypatch, direct_url, expected) -> None:
    from importlib import metadata

    from gansr import errors

    monkeypatch.setattr(metadata, "distribution", lambda name: FakeDistribution(direct_url))
    monkeypatch.chdir("/")
    assert errors.install_command("serve") == expected


def test_editable_install_in_its_own_folder_says_dot(monkeypatch, tmp_path: Path) -> None:
    from importlib import metadata

    from gansr import errors

    requires = ['fastapi>=0.110; extra == "serve"', 'uvicorn>=0.29; extra == "serve"', "numpy>=1.24"]
    url = {"url": tmp_path.as_uri(), "dir_info": {"editable": True}}
    monkeypatch.setattr(metadata, "distribution", lambda name: FakeDistribution(url, requires))
    monkeypatch.chdir(tmp_path)
    assert (
        errors.install_hint("serve")
        == "install it with: pip install -e '.[serve]' (or: pip install fastapi uvicorn)"
    )


@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("uvicorn", ["serve", "--port", "0"], "serve"),
        ("onnx", ["export", "--model", "srresnet-x4", "-o", "model.onnx"], "onnx"),
        ("av", ["upscale", "clip.mp4"], "video"),
    ],
)
def test_missing_extras_give_the_command_for_this_install(capsys, monkeypatch, tmp_path, module, argv, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import MODULE -> ImportError
    monkeypatch.setattr("gansr.errors._origin", lambda: ("editable", str(tmp_path / "clone")))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clone").mkdir()
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 64)
    assert main(argv) == 2
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert line.startswith("gansr: error:") and f"pip install -e './clone[{extra}]'" in line, line
    assert f"'gansr[{extra}]'" not in line


def test_shipped_models_say_what_they_are_for(capsys, monkeypatch) -> None:
    from gansr.models.checkpoint import read_metadata, shipped_models

    monkeypatch.setattr("gansr.cli.models.architecture_rows", lambda hw: [])  # only the shipped table

    shipped = {name: path for name, path in shipped_models().items() if not name.startswith("realsr")}
    assert shipped
    for name, path in shipped.items():
        description = read_metadata(path).get("description", "")
        assert description and "\n" not in description and len(description) <= 160, name
        # What it expects as input: photos or digits, and their kind.
        assert re.search(r"\b(RGB photos|gray digits)\b", description), (name, description)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("shipped models:") :]
    for name, path in shipped.items():
        (row,) = [line for line in table.splitlines() if line.startswith(name + " ")]
        assert row.endswith(read_metadata(path)["description"])


def test_readme_upscale_example_names_the_file_gansr_writes() -> None:
    from gansr.upscale.batch import InputFile, default_suffix, plan_jobs

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^gansr upscale (\S+)\s+# -> (\S+) next to it", readme, re.MULTILINE)
    assert match, "the README's first upscale example is gone"
    source, promised = match.groups()
    (job,) = plan_jobs([InputFile(Path(source))], suffix=default_suffix(4))
    assert job.dest.name == promised


def test_packaged_set5_is_the_shared_set5(shared_data: Path) -> None:
    """The fixture ``set5`` falls back to the packaged copy: it must be the very same images."""
    from conftest import packaged_set5

    def digests(folder: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))}

    assert digests(packaged_set5()) == digests(shared_data / "Set5")
