"""`plant_gateway`: the cell on the plant network, a secure OPC UA server for MES and SCADA (docs/opcua.md).

A thin shell: ROS messages become plain values here, once; `cell.plant_model` turns them into the address
space's values and `cell.plant_server` serves them (asyncua, in its own asyncio thread).

Interface (all reliable; latched = transient local):
  in   /cell/state String (latched JSON snapshot of the coordinator), /diagnostics DiagnosticArray
       /cell/recipe_result String (latched): the coordinator's answer to the last recipe request
       the weld record store and the part ledger (SQLite, read-only), polled
  out  /plant_gateway/endpoint String (latched): the OPC UA endpoint URL, once listening
       /cell/recipe_request String (latched): the recipe id an engineer selected over OPC UA
  uses /cell/{start,stop,pause,resume,reset,acknowledge} (std_srvs/Trigger), as an operator does
"""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

from cell_control.cell import plant_model as model
from cell_control.cell.plant_server import COMMAND_TIMEOUT_S, PlantServer, ServerPaths, default_state_dir
from cell_control.cell.plant_users import UserFileError
from cell_control.cell.recipe import RecipeError, load_recipe, recipe_path
from cell_control.nodes.node_main import run_node
from cell_control.nodes.common import LATCHED, RELIABLE, descriptor
from cell_control.weld.records import default_db_path

STORE_PERIOD_S = 1.0


class PlantGatewayNode(Node):
    def __init__(self) -> None:
        super().__init__('plant_gateway')
        p = self._declare_parameters()
        self._recipe_id = p['recipe']
        self._seam_id = load_recipe(recipe_path(self._recipe_id)).seams[0].id
        state_dir = Path(p['state_dir'])
        self._ledger_path = Path(p['ledger_path'])
        self._records = model.RecordReader(Path(p['records_path'] or default_db_path()), model.LAST_RECORDS)
        self._alarms: dict[str, str] = {}
        names = [command.lower() for command in model.COMMANDS]
        self._triggers = {name: self.create_client(Trigger, f'/cell/{name}') for name in names}
        self._recipe_pub = self.create_publisher(String, '/cell/recipe_request', LATCHED)
        self._endpoint_pub = self.create_publisher(String, '/plant_gateway/endpoint', LATCHED)
        paths = ServerPaths(state_dir, Path(p['users_file'] or state_dir / 'users'))
        self._server = PlantServer(p['host'], p['port'], paths, self._command, self._select_recipe, p['recipe'],
                                   self.get_logger())
        self._server.start()
        self.create_subscription(String, '/cell/state', self._on_state, LATCHED)
        self.create_subscription(String, '/cell/recipe_result', self._on_recipe_result, LATCHED)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, RELIABLE)
        self.create_timer(STORE_PERIOD_S, self._refresh_stores)
        self._endpoint_pub.publish(String(data=self._server.endpoint))
        self.get_logger().info(f'OPC UA server listening on {self._server.endpoint} (state {state_dir})')

    def _declare_parameters(self) -> dict:
        declare = self.declare_parameter
        declare('host', '127.0.0.1', descriptor('Address the OPC UA server listens on (the plant network side).'))
        declare('port', 4840, descriptor('TCP port of the OPC UA server; 0 takes a free one.', 0, 65535,
                                         integer=True))
        declare('state_dir', str(default_state_dir()), descriptor(
            'Folder of the server certificate and key (made on first start) and the trusted/ client certificates.'))
        declare('users_file', '', descriptor('Password file (cell-control users); empty: <state_dir>/users.'))
        declare('recipe', 'bracket', descriptor('Recipe the cell starts with (its seam is the current seam until '
                                                '/cell/state names another).'))
        declare('ledger_path', str(default_db_path().with_name('part_ledger.sqlite')), descriptor(
            'SQLite file of the part ledger, read-only (the coordinator writes it).'))
        declare('records_path', '', descriptor('SQLite file of the weld records, read-only; empty: the default.'))
        return {name: self.get_parameter(name).value for name in (
            'host', 'port', 'state_dir', 'users_file', 'recipe', 'ledger_path', 'records_path')}

    def close(self) -> None:
        self._server.stop()
        self._records.close()

    def _on_state(self, msg: String) -> None:
        try:
            snapshot = json.loads(msg.data)
        except ValueError:
            self.get_logger().warning('/cell/state is not JSON; ignored')
            return
        if not isinstance(snapshot, dict):
            self.get_logger().warning('/cell/state is not a JSON object; ignored')
            return
        self._follow_recipe(str(snapshot.get('recipe', '')))
        self._server.update(model.from_state(snapshot, self._seam_id))
        self._refresh_stores()

    def _follow_recipe(self, recipe_id: str) -> None:
        """Take the current seam from the recipe the coordinator runs (an engineer may have changed it)."""
        if not recipe_id or recipe_id == self._recipe_id:
            return
        self._recipe_id = recipe_id
        try:
            self._seam_id = load_recipe(recipe_path(recipe_id)).seams[0].id
        except RecipeError as error:   # a coordinator started on a recipe file outside config/recipes
            self._seam_id = ''
            self.get_logger().warning(f'current seam unknown: {error}')

    def _on_recipe_result(self, msg: String) -> None:
        self._server.update({model.RECIPE_RESULT_PATH: msg.data})

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.level == DiagnosticStatus.OK:
                self._alarms.pop(status.name, None)
            else:
                self._alarms[status.name] = status.message
        self._server.update(model.from_alarms(self._alarms))

    def _refresh_stores(self) -> None:
        parts = model.read_parts(self._ledger_path)
        values = model.from_ledger(parts)
        self._records.refresh()
        verdicts = {p.part_id: p.verdict for p in parts if p.verdict}
        values.update(model.from_records(self._records.last, self._records.count, verdicts))
        self._server.update(values)   # the server writes only what changed

    def _command(self, command: str) -> tuple[bool, str]:
        """Call /cell/<command> as an operator would; runs in the OPC UA server's worker thread."""
        client = self._triggers[command]
        if not client.service_is_ready():
            return False, f'/cell/{command} is not served (is the coordinator running?)'
        answered = threading.Event()
        future = client.call_async(Trigger.Request())
        future.add_done_callback(lambda _: answered.set())
        if not answered.wait(COMMAND_TIMEOUT_S):
            future.cancel()
            return False, f'/cell/{command} did not answer within {COMMAND_TIMEOUT_S} s'
        reply = future.result()
        return reply.success, reply.message

    def _select_recipe(self, recipe_id: str) -> None:
        self._recipe_pub.publish(String(data=recipe_id))


def main(args: list[str] | None = None) -> int:
    return run_node(PlantGatewayNode, 'plant_gateway', args, start_up_errors=(UserFileError, TimeoutError))


if __name__ == '__main__':
    sys.exit(main())
