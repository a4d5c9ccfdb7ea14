"""The built (non-editable) wheel ships policies/ and reports/ and finds them at run time."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_finds_its_data(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(ROOT)], check=True, capture_output=True)
    wheel = next(dist.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("governance/_data/policies/") and n.endswith(".yaml") for n in names), names
    assert any(n.startswith("governance/_data/reports/") for n in names), names
    assert "governance/catalog/migrations/env.py" in names
    assert any(n.startswith("governance/catalog/migrations/versions/0001") for n in names)
    server_assets = {"governance/server/static/app.css", "governance/server/static/lineage.js",
                     "governance/server/static/favicon.svg", "governance/server/templates/base.html.j2",
                     "governance/server/templates/lineage.html.j2"}
    assert server_assets <= set(names), sorted(server_assets - set(names))

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    purelib = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    # third-party dependencies come from this interpreter's site-packages (no network needed);
    # the project itself only from the wheel (a .pth path is not a site dir, so the editable
    # install's own .pth there is not processed)
    deps = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "_outer_deps.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(purelib), str(wheel)],
                   check=True, capture_output=True)

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVERNANCE_", "PYTHON"))}
    probe = (
        "import governance, pathlib; from governance._resources import resource_dir;"
        "p = resource_dir('policies'); r = resource_dir('reports');"
        "print(pathlib.Path(governance.__file__).parent); print(p); print(sorted(x.name for x in p.iterdir()));"
        "print(sorted(x.name for x in r.iterdir()))"
    )
    out = subprocess.run([str(py), "-c", probe], cwd=work, env=env, check=True, capture_output=True, text=True)
    package_dir, policies, policy_files, report_files = out.stdout.strip().splitlines()
    assert Path(package_dir).is_relative_to(purelib)
    assert Path(policies).is_relative_to(purelib)
    assert "baseline.yaml" in policy_files
    assert report_files != "[]"
    init = subprocess.run([str(py), "-m", "governance.cli", "init"], cwd=work, env=env, capture_output=True,
                          text=True, check=False)
    assert init.returncode == 0, init.stderr
    assert (work / ".governance" / "catalog.db").is_file()
