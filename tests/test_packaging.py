"""A non-editable install finds its rule packs, report templates and playbooks folder."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("hatchling", reason="building the wheel needs hatchling (in .[test])")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(ROOT)],
        check=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("posture-*.whl")
    return built


def test_wheel_carries_the_data_folders(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "scanner/_data/rules/baseline.yaml" in names
    assert "scanner/_data/reports/report.html.j2" in names
    assert "scanner/_data/playbooks/README.md" in names
    assert "scanner/cli/__init__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "posture = scanner.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_fresh_venv_install_finds_them_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, timeout=300,
    )  # fmt: skip
    probe = (
        "import scanner, scanner.resources as r;"
        "print(scanner.__file__);"
        "print(r.rules_dir()); print(r.reports_dir()); print(r.playbooks_dir())"
    )
    out = subprocess.run(
        [str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    site = env_dir.resolve()
    assert all(Path(line).resolve().is_relative_to(site) for line in out), out
    assert (Path(out[1]) / "baseline.yaml").is_file()
    assert (Path(out[2]) / "report.html.j2").is_file()
