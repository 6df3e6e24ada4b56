"""The cell's OPC UA server (asyncua) in its own asyncio thread: secure endpoints, users, the address space.

Security, by default and not configurable away:
- endpoints Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss, each Sign and SignAndEncrypt;
  no None endpoint;
- the application instance certificate and key are made on first start in the state folder and kept;
- a client is accepted only with a certificate in the trust list folder (`<state>/trusted`, DER or PEM),
  checked when the session is created and again when it is activated against the secure channel's own
  certificate (asyncua opens a SecurityPolicy#None channel even without a None endpoint: such a channel has
  no certificate, so its session is never activated);
- only user-name tokens, checked against the password file (`cell.plant_users`); no anonymous sessions;
- viewers read and subscribe, operators also call the commands, engineers also write the recipe id;
  a refusal answers BadUserAccessDenied (or BadOutOfRange for an unknown recipe) and is logged with the user.

The server does no ROS: commands go to a `command(name) -> (success, message)` callable, recipe selections
to `select_recipe(recipe_id)`, and values come in through `update({path: value})` from any thread.
"""
from __future__ import annotations

import asyncio
import contextvars
import math
import os
import socket
import threading
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import PermissionRuleset, SimpleRoleRuleset
from asyncua.crypto.permission_rules import User as UaUser
from asyncua.crypto.permission_rules import UserRole as UaRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from cell_control.cell import plant_model as model
from cell_control.cell.plant_users import COMMAND_ROLE, RECIPE_ROLE, UserFile, UserFileError, may
from cell_control.cell.recipe import RecipeError, recipe_path
from cell_control.weld.records import default_db_path

SECURITY_POLICIES = [
    ua.SecurityPolicyType.Basic256Sha256_Sign, ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign, ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign, ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
]
START_TIMEOUT_S = 60.0
COMMAND_TIMEOUT_S = 10.0
VARIANT = {'String': ua.VariantType.String, 'Boolean': ua.VariantType.Boolean, 'UInt32': ua.VariantType.UInt32,
           'Double': ua.VariantType.Double}
_caller: contextvars.ContextVar[UaUser | None] = contextvars.ContextVar('opcua_caller', default=None)


class Log(Protocol):
    def info(self, message: str) -> Any: ...
    def warning(self, message: str) -> Any: ...


def endpoint_url(host: str, port: int) -> str:
    """Return the OPC UA endpoint URL the gateway serves on `host`:`port`."""
    return f'opc.tcp://{host}:{port}/cell_control/'


def default_state_dir() -> Path:
    """Return the gateway's folder beside the weld records: $CELL_CONTROL_DATA_DIR/opcua or ~/.local/share/..."""
    return default_db_path().parent / 'opcua'


@dataclass(frozen=True)
class ServerPaths:
    """Where the server keeps its certificate, its key, the trusted client certificates and the users."""

    state_dir: Path
    users_file: Path

    @property
    def certificate(self) -> Path:
        return self.state_dir / 'server_cert.der'

    @property
    def private_key(self) -> Path:
        return self.state_dir / 'server_key.pem'

    @property
    def trusted(self) -> Path:
        return self.state_dir / 'trusted'


@dataclass
class _CellUser(UaUser):
    cell_role: str = 'viewer'


class _RememberCaller(PermissionRuleset):
    """asyncua's role rules for every request, and the caller kept for the method and write handlers.

    asyncua checks the rules in the task that then serves the request, so the context variable set here is
    the caller's when the request reaches a method callback or a value setter.
    """

    def __init__(self) -> None:
        self._rules = SimpleRoleRuleset()

    def check_validity(self, user: UaUser, action_type_id: ua.NodeId, body: Any) -> bool:
        _caller.set(user)
        return self._rules.check_validity(user, action_type_id, body)


class _PasswordUsers(UserManager):
    """Sessions only for users of the password file over a secure channel with a trusted certificate."""

    def __init__(self, users: UserFile, trust: TrustStore, log: Log) -> None:
        self._users, self._trust, self._log = users, trust, log

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> UaUser | None:
        if not certificate:   # b'' on a None channel
            self._log.warning(f'session of {username or "an anonymous client"} refused: the secure channel has no '
                              'client certificate (SecurityPolicy#None)')
            return None
        if not self._trust.is_trusted(x509.load_der_x509_certificate(certificate)):
            self._log.warning(f'session of {username or "an anonymous client"} refused: client certificate not '
                              'in the trust list')
            return None
        if not username or password is None:
            self._log.warning('session refused: anonymous and certificate logins are not allowed')
            return None
        try:
            user = self._users.authenticate(username, password)
        except UserFileError as error:
            self._log.warning(f'session of {username} refused: {error}')
            return None
        if user is None:
            self._log.warning(f'session of {username} refused: unknown user or wrong password')
            return None
        self._log.info(f'session of {user.name} opened (role {user.role})')
        return _CellUser(role=UaRole.User, name=user.name, cell_role=user.role)


class _TrustList(TrustStore):
    """asyncua's trust store over the trust list folder; it trusts nothing while the folder is empty."""

    async def load_trust(self) -> None:
        try:
            await super().load_trust()
        except ValueError:   # cryptography refuses an empty store
            self._trust_store = None


def _same(a: object, b: object) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


class PlantServer:
    """Start with `start()`, feed with `update()`, end with `stop()`; every call is safe from any thread."""

    def __init__(self, host: str, port: int, paths: ServerPaths, command: Callable[[str], tuple[bool, str]],
                 select_recipe: Callable[[str], None], recipe_id: str, log: Log,
                 name: str = 'cell_control welding cell') -> None:
        self._host, self._port, self._paths, self._name = host, port, paths, name
        self._command, self._select_recipe, self._recipe_id, self._log = command, select_recipe, recipe_id, log
        self._users = UserFile(paths.users_file)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._server: Server | None = None
        self._nodes: dict[str, tuple[ua.NodeId, ua.VariantType]] = {}
        self._values: dict[str, object] = {}
        self.endpoint = ''
        self.application_uri = f'urn:{socket.gethostname()}:cell_control:plant_gateway'

    # ----- lifetime ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Make the certificate if needed and listen; raise naming what is wrong if the server cannot start."""
        if not self._users.users():
            raise UserFileError(f'no users in {self._paths.users_file}: add one with '
                                '`cell-control users add NAME --role viewer|operator|engineer`')
        self._thread = threading.Thread(target=self._run, name='opcua-server', daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise TimeoutError(f'OPC UA server did not start within {START_TIMEOUT_S} s')
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._loop is not None and self._done is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._done.set)
            self._thread.join(timeout=START_TIMEOUT_S)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._done = asyncio.get_running_loop(), asyncio.Event()
        try:
            server = self._server = await self._make_server()
            await server.start()
        except Exception as error:   # reported to start() in the caller's thread
            self._error = error
            self._ready.set()
            return
        port = server.bserver.port if server.bserver is not None else self._port
        self.endpoint = endpoint_url(self._host, port)
        self._ready.set()
        try:
            await self._done.wait()
        finally:
            await server.stop()

    async def _make_server(self) -> Server:
        paths = self._paths
        paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths.trusted.mkdir(exist_ok=True, mode=0o700)
        server = Server(user_manager=None)
        await server.init()
        server.set_endpoint(endpoint_url(self._host, self._port))
        server.set_server_name(self._name)
        await server.set_application_uri(self.application_uri)
        await setup_self_signed_certificate(paths.private_key, paths.certificate, self.application_uri,
                                            socket.gethostname(), [ExtendedKeyUsageOID.SERVER_AUTH],
                                            {'organizationName': 'cell_control'})
        os.chmod(paths.private_key, 0o600)
        await server.load_certificate(str(paths.certificate))
        await server.load_private_key(str(paths.private_key))
        trust = _TrustList([paths.trusted], [])
        await trust.load()
        validator = CertificateValidator(CertificateValidatorOptions.TRUSTED_VALIDATION
                                         | CertificateValidatorOptions.PEER_CLIENT, trust)

        async def validate(certificate: x509.Certificate, description: ua.ApplicationDescription) -> None:
            await trust.load_trust()   # the folder as it is now: a certificate added or removed counts at once
            try:
                await validator.validate(certificate, description)
            except ServiceError as error:
                self._log.warning(f'session of {description.ApplicationUri} refused: its certificate '
                                  f'({certificate.subject.rfc4514_string()}) fails the trust list check: '
                                  f'{ua.StatusCode(error.code).name}')
                raise
        server.set_certificate_validator(validate)
        server.iserver.set_user_manager(_PasswordUsers(self._users, trust, self._log))
        server.set_security_policy(SECURITY_POLICIES, permission_ruleset=_RememberCaller())
        server.set_identity_tokens([ua.UserNameIdentityToken])
        await self._build_address_space(server)
        return server

    # ----- address space ----------------------------------------------------------------------------------
    async def _build_address_space(self, server: Server) -> None:
        index = await server.register_namespace(model.NAMESPACE_URI)
        machines = await server.nodes.objects.add_folder(ua.NodeId('Machines', index),
                                                         ua.QualifiedName('Machines', index))
        cell = await machines.add_object(ua.NodeId(model.CELL_NAME, index), ua.QualifiedName(model.CELL_NAME, index))
        folders = {}
        for folder in model.FOLDERS:
            folders[folder] = await cell.add_object(ua.NodeId(f'{model.CELL_NAME}.{folder}', index),
                                                    ua.QualifiedName(folder, index))
        initial = {v.path: v.initial for v in model.VARIABLES}
        initial.update(model.identification(self.application_uri, self._name, _version(), socket.gethostname()))
        initial[model.RECIPE_PATH] = self._recipe_id
        initial.update(model.from_state(None, ''))
        for variable in model.VARIABLES:
            folder, name = variable.path.split('.')
            variant = VARIANT[variable.type.removesuffix('[]')]
            node = await folders[folder].add_variable(
                ua.NodeId(f'{model.CELL_NAME}.{variable.path}', index), ua.QualifiedName(name, index),
                ua.Variant(initial[variable.path], variant))
            await node.write_attribute(ua.AttributeIds.Description,
                                       ua.DataValue(ua.Variant(ua.LocalizedText(variable.description))))
            self._nodes[variable.path] = (node.nodeid, variant)
            self._values[variable.path] = initial[variable.path]
        recipe = server.get_node(self._nodes[model.RECIPE_PATH][0])
        await recipe.set_writable()
        server.iserver.aspace.set_attribute_value_setter(recipe.nodeid, ua.AttributeIds.Value, self._write_recipe)
        outputs = [_argument('Success', ua.ObjectIds.Boolean, 'Whether the cell accepted the command.'),
                   _argument('Message', ua.ObjectIds.String, "The cell's answer: its new state, or why not.")]
        for command in model.COMMANDS:
            async def call(parent: ua.NodeId, command: str = command) -> Any:
                return await self._call(command)
            await cell.add_method(ua.NodeId(f'{model.CELL_NAME}.{command}', index), ua.QualifiedName(command, index),
                                  call, [], outputs)

    async def _call(self, command: str) -> Any:
        user = _caller.get()
        name, role = (user.name, user.cell_role) if isinstance(user, _CellUser) else ('unknown', 'viewer')
        if not may(role, COMMAND_ROLE):
            self._log.warning(f'{command} refused: user {name} has role {role}; commands need {COMMAND_ROLE}')
            return ua.StatusCode(ua.StatusCodes.BadUserAccessDenied)
        success, message = await asyncio.to_thread(self._command, command.lower())
        if success:   # one call site per severity: rclpy's logger refuses a change of severity at one site
            self._log.info(f'{command} by {name}: done: {message}')
        else:
            self._log.warning(f'{command} by {name}: refused by the cell: {message}')
        return [ua.Variant(success, ua.VariantType.Boolean), ua.Variant(message, ua.VariantType.String)]

    def _write_recipe(self, node: Any, attribute: ua.AttributeIds, value: ua.DataValue) -> None:
        user = _caller.get()
        name, role = (user.name, user.cell_role) if isinstance(user, _CellUser) else ('unknown', 'viewer')
        recipe_id: Any = value.Value.Value if value.Value is not None else None   # as the client wrote it
        if not may(role, RECIPE_ROLE):
            self._log.warning(f'recipe change to {recipe_id!r} refused: user {name} has role {role}; '
                              f'recipes need {RECIPE_ROLE}')
            raise ua.uaerrors.BadUserAccessDenied
        try:
            recipe_path(recipe_id)
        except RecipeError as error:
            self._log.warning(f'recipe change by {name} refused: {error}')
            raise ua.uaerrors.BadOutOfRange from None
        node.attributes[attribute].value = value
        self._select_recipe(recipe_id)
        self._log.info(f'recipe {recipe_id} selected by {name}')

    # ----- live values ------------------------------------------------------------------------------------
    def update(self, values: Mapping[str, object]) -> None:
        """Write the values that changed; returns at once, the server thread writes them."""
        if self._loop is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._write(dict(values)), self._loop)

    async def _write(self, values: dict[str, object]) -> None:
        assert self._server is not None   # update() is used after start(), which returns once the server is up
        for path, value in values.items():
            if _same(self._values.get(path), value):
                continue
            self._values[path] = value
            nodeid, variant = self._nodes[path]
            await self._server.write_attribute_value(nodeid, ua.DataValue(ua.Variant(value, variant)))


def _argument(name: str, data_type: int, description: str) -> ua.Argument:
    return ua.Argument(Name=name, DataType=ua.NodeId(data_type), ValueRank=-1,
                       Description=ua.LocalizedText(description))


def _version() -> str:
    try:
        return version('cell_control')
    except PackageNotFoundError:
        return 'unknown'
