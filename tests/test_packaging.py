"""The built wheel is complete: configs, py.typed and the license travel with the package.

The wheel is built from a copy of the sources (so the checkout gets no build/ or egg-info),
unpacked, and imported in a fresh interpreter whose path holds the unpacked wheel and not
the checkout: the named configs resolve there through the package resources.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("setuptools", minversion="77")  # the build backend of pyproject.toml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "linear_ssl")

CHECK = """
import importlib.resources, json, sys
import linear_ssl
from linear_ssl.train.config import find_experiment, load_config
package = importlib.resources.files("linear_ssl")
cfg = load_config("cifar10/directpred")
print(json.dumps(dict(
    package=linear_ssl.__file__,
    smoke=str(find_experiment("smoke")),
    directpred=str(find_experiment("cifar10/directpred")),
    lr=cfg.optim.lr,
    py_typed=package.joinpath("py.typed").is_file(),
)))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(path of the built wheel, the build backend's output)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v"]
        + [str(src), "-w", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    (path,) = out.glob("linear_ssl-*.whl")
    return path, build.stdout + build.stderr


def test_wheel_ships_every_named_config_py_typed_and_the_license(wheel):
    path, log = wheel
    names = set(zipfile.ZipFile(path).namelist())
    shipped = {n.removeprefix("linear_ssl/configs/") for n in names if n.endswith(".yaml")}
    in_tree = {
        p.relative_to(ROOT / "linear_ssl" / "configs").as_posix()
        for p in (ROOT / "linear_ssl" / "configs").rglob("*.yaml")
    }
    assert shipped == in_tree
    assert {"smoke.yaml", "cifar10/directpred.yaml", "imagenet/table9_mlp_60ep.yaml"} <= shipped
    assert "linear_ssl/py.typed" in names
    assert "linear_ssl/data/cifar10-subset.zip" in names
    (info,) = {n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA")}
    metadata = zipfile.ZipFile(path).read(f"{info}/METADATA").decode()
    assert "License-Expression: MIT" in metadata.splitlines()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "project.license" not in log  # the TOML-table form setuptools warns about


@pytest.mark.slow  # ~9 s: a fresh interpreter imports torch
def test_configs_resolve_from_the_unpacked_wheel_without_the_checkout(wheel, tmp_path):
    """What an installed wheel does: linear_ssl imported from site-packages-like files,
    the checkout neither on the path nor the working directory."""
    pytest.importorskip("torch")
    import json

    site = tmp_path / "site"
    zipfile.ZipFile(wheel[0]).extractall(site)
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["package"]).is_relative_to(site)
    assert Path(found["smoke"]) == site / "linear_ssl" / "configs" / "smoke.yaml"
    assert Path(found["directpred"]).is_relative_to(site)
    assert found["lr"] == 0.03  # theory.md section 5, as in the checkout's copy
    assert found["py_typed"]


def test_citation_cff_matches_the_package_and_names_the_three_papers():
    """CITATION.cff's version and license are pyproject's; its references are theory.md's
    [T], [W] and [E], by title."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    yaml = pytest.importorskip("yaml")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert (cff["version"], cff["license"]) == (project["version"], project["license"])
    theory = " ".join((ROOT / "docs" / "theory.md").read_text().split()).lower()
    titles = [" ".join(r["title"].split()).lower() for r in cff["references"]]
    assert len(titles) == 3
    for title in titles:
        assert title in theory
    years = sorted(r["year"] for r in cff["references"])
    assert years == [2021, 2021, 2023]
