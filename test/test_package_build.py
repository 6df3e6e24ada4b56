"""The package builds as a real ROS 2 package with colcon (from PyPI) and installs its share files."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

SHARED = ('package.xml', 'setup.py', 'setup.cfg', 'resource', 'cell_control', 'launch', 'urdf', 'config')


def test_colcon_build_installs_launch_urdf_and_config(tmp_path):
    source = tmp_path / 'src' / 'cell_control'
    source.mkdir(parents=True)
    for name in SHARED:   # a copy: colcon writes build files next to setup.py
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, source / name)
    colcon = Path(sys.executable).parent / 'colcon'
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix)
    build = subprocess.run([str(colcon), 'build', '--base-paths', str(tmp_path / 'src'), '--build-base',
                            str(tmp_path / 'build'), '--install-base', str(tmp_path / 'install')],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    prefix = tmp_path / 'install' / 'cell_control'
    check = ('from ament_index_python.packages import get_package_share_directory as g; '
             'from pathlib import Path; p = Path(g("cell_control")); print(p); '
             'print(sorted(f.name for f in (p / "launch").iterdir())); '
             'print((p / "urdf" / "cell.urdf.xacro").is_file(), (p / "config" / "cell_layout.yaml").is_file(), '
             '(p / "config" / "recipes" / "bracket.yaml").is_file(), (p / "package.xml").is_file())')
    found = subprocess.run([sys.executable, '-c', check], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, AMENT_PREFIX_PATH=f'{prefix}{os.pathsep}{sys.prefix}'))
    assert found.returncode == 0, found.stderr
    share, launch_files, flags = found.stdout.strip().splitlines()
    assert Path(share) == prefix / 'share' / 'cell_control'
    assert 'cell.launch.py' in launch_files and 'gazebo.launch.py' in launch_files
    assert flags == 'True True True True'
    # ros2 run finds executables in lib/<package>.
    assert (prefix / 'lib' / 'cell_control' / 'cell_sim').is_file()
    assert (prefix / 'lib' / 'cell_control' / 'coordinator').is_file()
