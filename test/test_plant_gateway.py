"""The OPC UA plant gateway against a real client over TCP: the coordinator and the gateway as processes on their
own ROS domain, an asyncua client in this process (and one in a process of its own that is killed).

Checked: browsing and reading the address space, a subscription that sees the state change while an operator
starts and stops the cell through the methods, the roles (viewer, operator, engineer and the recipe id), and
every refusal: anonymous, wrong password, untrusted certificate, SecurityPolicy#None, a viewer calling Start.
"""
from __future__ import annotations

import asyncio
import sys

import pytest

pytest.importorskip('rclpy')
from asyncua import Client, ua  # noqa: E402
from asyncua.common.utils import create_nonce  # noqa: E402

from cell_control.bench import _opcua_client as opc  # noqa: E402
from cell_control.cell.plant_model import VARIABLES  # noqa: E402
from cell_control.testing import wait_for  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope='module')
def gateway(tmp_path_factory):
    """The coordinator and the gateway, running; yields the gateway's files, the processes and the ROS log folder.

    One cell for the whole module, so its domain and processes are claimed here rather than per test.
    """
    directory = tmp_path_factory.mktemp('plant_gateway')
    with opc.running_gateway(directory) as (files, processes):
        yield files, processes, directory / 'ros_log'


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, opc.SESSION_TIMEOUT_S))


async def _read(files, user: str, *path: str):
    client = await opc.connect(files, user)
    try:
        node = await client.nodes.objects.get_child([*opc.CELL_PATH, *(f'2:{name}' for name in path)])
        return await node.read_value()
    finally:
        await client.disconnect()


def test_browse_finds_every_variable_and_method_and_reads_identification(gateway):
    files, _, _ = gateway

    async def browse():
        client = await opc.connect(files, 'vic')
        try:
            cell = await client.nodes.objects.get_child(opc.CELL_PATH)
            found = set()
            for child in await cell.get_children():
                name = (await child.read_browse_name()).Name
                found.add(name)
                for leaf in await child.get_children():
                    found.add(f'{name}.{(await leaf.read_browse_name()).Name}')
            uri = await (await cell.get_child(['2:Identification', '2:ProductInstanceUri'])).read_value()
            return found, uri
        finally:
            await client.disconnect()
    found, uri = run(browse())
    assert {v.path for v in VARIABLES} <= found
    assert {'Start', 'Stop', 'Pause', 'Resume', 'Reset', 'Acknowledge'} <= found
    assert uri.startswith('urn:') and 'cell_control' in uri


def test_operator_starts_and_stops_the_cell_and_a_subscriber_sees_each_state(gateway):
    files, _, _ = gateway

    class Changes:
        def __init__(self) -> None:
            self.queue: asyncio.Queue = asyncio.Queue()

        def datachange_notification(self, node, value, data) -> None:
            self.queue.put_nowait(value)

    async def until(changes: Changes, wanted: str) -> None:
        while await changes.queue.get() != wanted:
            pass

    async def cycle():
        client = await opc.connect(files, 'olga')
        try:
            cell = await client.nodes.objects.get_child(opc.CELL_PATH)
            state = await cell.get_child(['2:CellState', '2:State'])
            item = await cell.get_child(['2:MachineryItemState', '2:CurrentState'])
            changes = Changes()
            subscription = await client.create_subscription(20, changes)
            await subscription.subscribe_data_change(state)
            await asyncio.wait_for(until(changes, 'idle'), opc.SESSION_TIMEOUT_S)
            started = await cell.call_method('2:Start')
            await asyncio.wait_for(until(changes, 'running'), opc.SESSION_TIMEOUT_S)
            running_item = await item.read_value()
            refused = await cell.call_method('2:Resume')
            stopped = await cell.call_method('2:Stop')
            await asyncio.wait_for(until(changes, 'stopped'), opc.SESSION_TIMEOUT_S)
            return started, running_item, refused, stopped, await item.read_value()
        finally:
            await client.disconnect()
    started, running_item, refused, stopped, stopped_item = run(cycle())
    assert started == [True, 'start: cell running']
    assert running_item == 'Executing'
    assert refused[0] is False and refused[1], 'the cell refuses resume while running, and says why'
    assert stopped == [True, 'stop: cell stopped']
    assert stopped_item == 'NotExecuting'


def test_a_viewer_calling_start_is_refused(gateway):
    files, _, _ = gateway

    async def attempt():
        client = await opc.connect(files, 'vic')
        try:
            cell = await client.nodes.objects.get_child(opc.CELL_PATH)
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await cell.call_method('2:Start')
        finally:
            await client.disconnect()
    before = run(_read(files, 'vic', 'CellState', 'State'))
    run(attempt())
    assert run(_read(files, 'vic', 'CellState', 'State')) == before


@pytest.mark.parametrize('user, recipe, refusal', [
    ('olga', 'frame_rail', ua.uaerrors.BadUserAccessDenied),   # operators may not change recipes
    ('erin', '../../etc/passwd', ua.uaerrors.BadOutOfRange),   # not a recipe id
    ('erin', 'no_such_recipe', ua.uaerrors.BadOutOfRange),
])
def test_recipe_writes_are_refused_without_the_role_or_for_an_unknown_recipe(gateway, user, recipe, refusal):
    files, _, _ = gateway

    async def write():
        client = await opc.connect(files, user)
        try:
            node = await client.nodes.objects.get_child([*opc.CELL_PATH, '2:Production', '2:RecipeId'])
            with pytest.raises(refusal):
                await node.write_value(recipe)
            return await node.read_value()
        finally:
            await client.disconnect()
    assert run(write()) != recipe


def test_an_engineer_selects_a_known_recipe(gateway):
    files, _, _ = gateway

    async def write():
        client = await opc.connect(files, 'erin')
        try:
            node = await client.nodes.objects.get_child([*opc.CELL_PATH, '2:Production', '2:RecipeId'])
            await node.write_value('frame_rail')
        finally:
            await client.disconnect()
    run(write())
    assert run(_read(files, 'vic', 'Production', 'RecipeId')) == 'frame_rail'


@pytest.mark.parametrize('user, password, certificate', [
    (None, None, 'trusted'),                  # anonymous
    ('olga', 'not-her-password', 'trusted'),
    ('nobody', 'operator-pass-1', 'trusted'),
    ('olga', None, 'untrusted'),              # right password, certificate not in the trust list
])
def test_sessions_are_refused(gateway, user, password, certificate):
    files, _, _ = gateway
    with pytest.raises((ua.UaError, ConnectionError)):
        run(opc.connect(files, user, password, getattr(files, certificate)))


def test_the_server_offers_no_none_endpoint_and_activates_no_session_over_a_none_channel(gateway):
    files, _, _ = gateway

    async def endpoints():
        client = Client(files.endpoint)
        return await client.connect_and_get_server_endpoints()

    async def none_channel():
        client = Client(files.endpoint, timeout=30)   # security None: no certificate on the channel
        await client.connect_socket()
        try:
            await client.send_hello()
            await client.open_secure_channel()
            params = ua.CreateSessionParameters(ClientNonce=create_nonce(32), EndpointUrl=files.endpoint,
                                                SessionName='none', RequestedSessionTimeout=60000)
            params.ClientDescription.ApplicationUri = files.trusted.uri
            params.ClientDescription.ApplicationType = ua.ApplicationType.Client
            await client.uaclient.create_session(params)
            activate = ua.ActivateSessionParameters()
            activate.UserIdentityToken = ua.UserNameIdentityToken(PolicyId='username', UserName='olga',
                                                                  Password=opc.USERS['olga'][1].encode())
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await client.uaclient.activate_session(activate)
            with pytest.raises(ua.uaerrors.BadSessionNotActivated):
                await client.nodes.server_state.read_value()
        finally:
            client.disconnect_socket()
    offered = run(endpoints())
    assert offered and all(e.SecurityMode != ua.MessageSecurityMode.None_ for e in offered)
    assert {e.SecurityPolicyUri.split('#')[1] for e in offered} == {
        'Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'}
    assert all(t.TokenType == ua.UserTokenType.UserName for e in offered for t in e.UserIdentityTokens)
    run(none_channel())


VANISHING_CLIENT = """
import asyncio, sys
from pathlib import Path
from cell_control.bench import _opcua_client as opc
async def main():
    files = opc.GatewayFiles(Path(sys.argv[1]), int(sys.argv[2]), *(opc.ClientCertificate(
        sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5])),) * 2)
    client = await opc.connect(files, 'olga')
    cell = await client.nodes.objects.get_child(['2:Machines', '2:WeldingCell'])
    subscription = await client.create_subscription(20, None)
    await subscription.subscribe_data_change(await cell.get_child(['2:CellState', '2:State']))
    print('connected', flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def test_a_client_that_vanishes_mid_session_does_not_disturb_the_server(gateway):
    files, processes, _ = gateway
    trusted = files.trusted
    processes.start('vanishing_client', [sys.executable, '-c', VANISHING_CLIENT, str(files.directory),
                                         str(files.port), trusted.uri, str(trusted.certificate), str(trusted.key)])

    def connected() -> bool:
        processes.check_running('the vanishing client to connect')
        return 'connected' in processes.output('vanishing_client').splitlines()
    wait_for(connected, opc.SESSION_TIMEOUT_S, 'the vanishing client to connect')
    processes.kill('vanishing_client')   # no goodbye: the socket just drops
    assert run(_read(files, 'olga', 'Identification', 'Model')) == 'cell_control'
    assert processes.exited() is None


def test_last_every_refusal_was_logged_with_the_user_name_and_the_gateway_stops_cleanly(gateway):
    """Runs last: it stops the nodes, so that the ROS log files are flushed and complete."""
    _, processes, log_dir = gateway
    processes.close()
    assert {name: processes.processes[name].returncode for name in ('coordinator', 'plant_gateway')} == {
        'coordinator': 0, 'plant_gateway': 0}
    log = '\n'.join(path.read_text(errors='replace') for path in log_dir.glob('*.log'))
    for line in ('Start refused: user vic has role viewer; commands need operator',
                 "recipe change to 'frame_rail' refused: user olga has role operator; recipes need engineer",
                 "recipe change by erin refused: recipe id '../../etc/passwd' is not a recipe name",
                 "recipe change by erin refused: no recipe 'no_such_recipe'",
                 'recipe frame_rail selected by erin',
                 'Start by olga: done: start: cell running',
                 'session of olga refused: unknown user or wrong password',
                 'session of nobody refused: unknown user or wrong password',
                 f'session of {gateway[0].untrusted.uri} refused: its certificate',
                 'session of olga refused: the secure channel has no client certificate (SecurityPolicy#None)'):
        assert line in log
