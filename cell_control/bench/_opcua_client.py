"""What the gateway's tests and benchmark share: its files (users, certificates), its processes, a secure client.

The processes are the smallest real set that serves `/cell/*`: the coordinator (no simulation: it idles
and answers commands) and the gateway, on their own ROS domain, with their own ledger, records and state.
"""
from __future__ import annotations

import asyncio
import socket
import contextlib
import dataclasses
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography.x509.oid import ExtendedKeyUsageOID

from cell_control.bringup import PACKAGE, NodeSpec, describe_cell
from cell_control.cell.plant_users import UserFile
from cell_control.testing import NodeProcesses, RosDomain

USERS = {'olga': ('operator', 'operator-pass-1'), 'vic': ('viewer', 'viewer-pass-1'),
         'erin': ('engineer', 'engineer-pass-1')}
CONNECT_TIMEOUT_S = 120.0
SESSION_TIMEOUT_S = 60.0
CELL_PATH = ['2:Machines', '2:WeldingCell']


@dataclass(frozen=True)
class ClientCertificate:
    uri: str
    certificate: Path
    key: Path


@dataclass(frozen=True)
class GatewayFiles:
    directory: Path
    port: int
    trusted: ClientCertificate
    untrusted: ClientCertificate

    @property
    def state_dir(self) -> Path:
        return self.directory / 'opcua'

    @property
    def endpoint(self) -> str:
        return f'opc.tcp://127.0.0.1:{self.port}/cell_control/'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


async def _client_certificate(directory: Path, name: str) -> ClientCertificate:
    uri = f'urn:{socket.gethostname()}:cell_control:test_{name}'
    made = ClientCertificate(uri, directory / f'{name}_cert.der', directory / f'{name}_key.pem')
    await setup_self_signed_certificate(made.key, made.certificate, uri, socket.gethostname(),
                                        [ExtendedKeyUsageOID.CLIENT_AUTH], {'organizationName': 'test'})
    return made


def prepare(directory: Path) -> GatewayFiles:
    """Users of every role, a trusted and an untrusted client certificate, a free port."""
    trusted, untrusted = (asyncio.run(_client_certificate(directory, name)) for name in ('scada', 'stranger'))
    files = GatewayFiles(directory, free_port(), trusted, untrusted)
    users = UserFile(files.state_dir / 'users')
    for name, (role, password) in USERS.items():
        users.add(name, role, password)
    (files.state_dir / 'trusted').mkdir(parents=True, exist_ok=True)
    (files.state_dir / 'trusted' / 'scada.der').write_bytes(files.trusted.certificate.read_bytes())
    return files


def nodes(files: GatewayFiles) -> list[NodeSpec]:
    """Describe the coordinator as bring-up does (no simulation) and the gateway, on the test's files."""
    stores = {'ledger_path': str(files.directory / 'ledger.sqlite'),
              'records_path': str(files.directory / 'records.sqlite')}
    coordinator = [n for n in describe_cell('none', ros_tools=False, overrides={'coordinator': stores})
                   if n.name == 'coordinator']
    return coordinator + [NodeSpec('plant_gateway', PACKAGE, 'plant_gateway', {
        'host': '127.0.0.1', 'port': files.port, 'state_dir': str(files.state_dir), **stores})]


async def connect(files: GatewayFiles, user: str | None, password: str | None = None,
                  certificate: ClientCertificate | None = None,
                  mode: ua.MessageSecurityMode = ua.MessageSecurityMode.SignAndEncrypt) -> Client:
    """Connect a client (Basic256Sha256); `password` defaults to the user's own."""
    certificate = certificate or files.trusted
    client = Client(files.endpoint, timeout=30)
    client.application_uri = certificate.uri
    await client.set_security(SecurityPolicyBasic256Sha256, str(certificate.certificate), str(certificate.key),
                              mode=mode)
    if user is not None:
        client.set_user(user)
        client.set_password(password if password is not None else USERS[user][1])
    await client.connect()
    return client


async def wait_until_listening(files: GatewayFiles, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Wait for the gateway to accept a viewer's session (it makes its certificate on first start)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client = await connect(files, 'vic')
        except (OSError, asyncio.TimeoutError, ua.UaError):
            if time.monotonic() > deadline:
                raise TimeoutError(f'the gateway did not accept a session on {files.endpoint} within {timeout_s} s')
            await asyncio.sleep(0.2)
            continue
        await client.disconnect()
        return


@contextlib.contextmanager
def running_gateway(directory: Path, coordinator: Mapping[str, object] | None = None
                    ) -> Iterator[tuple[GatewayFiles, NodeProcesses]]:
    """Prepare the files, start the coordinator (with `coordinator` parameters over bring-up's) and the gateway.

    Yields once the gateway accepts sessions; the processes and the claimed domain end with the block.
    """
    files = prepare(directory)
    with RosDomain() as domain, NodeProcesses(domain.id, directory / 'logs') as processes:
        processes.env['ROS_LOG_DIR'] = str(directory / 'ros_log')
        for node in nodes(files):
            if node.name == 'coordinator' and coordinator:
                node = dataclasses.replace(node, parameters={**node.parameters, **coordinator})
            processes.start_spec(node)
        asyncio.run(wait_until_listening(files))
        yield files, processes
