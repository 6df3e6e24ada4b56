"""`cell-control demo --opcua`: the gateway joins the demo's nodes, and the demo says where and as whom to connect."""
from __future__ import annotations

import re

from cell_control.cell.plant_users import UserFile
from cell_control.cli.demo import _opcua_access, build_parser


def test_demo_opcua_makes_a_demo_operator_once_and_prints_endpoint_and_user(tmp_path, monkeypatch):
    monkeypatch.setenv('CELL_CONTROL_DATA_DIR', str(tmp_path))
    said: list[str] = []
    first = _opcua_access(said.append)
    users = UserFile(tmp_path / 'opcua' / 'users')
    assert [(u.name, u.role) for u in users.users()] == [('demo', 'operator')]
    match = re.fullmatch(r'OPC UA: opc\.tcp://127\.0\.0\.1:(\d+)/cell_control/  user demo \(operator\), '
                         r'password (\S+); trust your client by copying its certificate to (.+)/', said[0])
    assert match and int(match[1]) == first['port'] and first['state_dir'] == str(tmp_path / 'opcua')
    assert users.authenticate('demo', match[2]).role == 'operator'
    _opcua_access(said.append)      # a second demo keeps the users it finds and names them
    assert 'a user of' in said[1] and 'demo (operator)' in said[1] and 'password' not in said[1]
    assert [u.name for u in users.users()] == ['demo']


def test_demo_takes_the_opcua_switch():
    assert build_parser().parse_args(['--opcua']).opcua is True
    assert build_parser().parse_args([]).opcua is False
