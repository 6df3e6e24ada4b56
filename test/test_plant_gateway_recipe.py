"""An engineer changes the cell's recipe over OPC UA: the coordinator applies it or refuses it, and says so.

Real processes on their own ROS domain (the coordinator and the plant gateway) and a real asyncua client over TCP.
The coordinator starts on a recipe file of its own (`bracket_trial`, outside config/recipes) so that a change to
the shipped `bracket` is a real change; `frame_rail` (two seams) is applied as well and changed back.
"""
from __future__ import annotations

import asyncio

import pytest

pytest.importorskip('rclpy')
from asyncua import ua  # noqa: E402

from cell_control.bench import _opcua_client as opc  # noqa: E402
from cell_control.cell.recipe import recipes_dir  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope='module')
def gateway(tmp_path_factory):
    """The coordinator on the `bracket_trial` recipe file and the gateway, running; yields the gateway's files."""
    directory = tmp_path_factory.mktemp('plant_gateway_recipe')
    trial = directory / 'bracket_trial.yaml'
    trial.write_text((recipes_dir() / 'bracket.yaml').read_text().replace('id: bracket', 'id: bracket_trial'))
    (directory / 'bracket_seam_a.csv').write_bytes((recipes_dir() / 'bracket_seam_a.csv').read_bytes())
    with opc.running_gateway(directory, coordinator={'recipe': str(trial)}) as (files, _processes):
        yield files


class Cell:
    """One client session on the cell object: read a variable, wait for a value, call a method, write the recipe."""

    def __init__(self, client, cell) -> None:
        self.client, self.cell = client, cell

    async def read(self, folder: str, name: str):
        return await (await self.cell.get_child([f'2:{folder}', f'2:{name}'])).read_value()

    async def until(self, folder: str, name: str, wanted) -> None:
        while await self.read(folder, name) != wanted:
            await asyncio.sleep(0.05)

    async def write_recipe(self, recipe_id: str) -> None:
        await (await self.cell.get_child(['2:Production', '2:RecipeId'])).write_value(recipe_id)


async def session(files, user: str, work):
    client = await opc.connect(files, user)
    try:
        cell = Cell(client, await client.nodes.objects.get_child(opc.CELL_PATH))
        return await asyncio.wait_for(work(cell), opc.SESSION_TIMEOUT_S)
    finally:
        await client.disconnect()


def test_an_engineers_recipe_change_is_refused_while_running_and_applied_once_stopped(gateway):
    async def operator(command: str):
        async def call(cell: Cell):
            return await cell.cell.call_method(f'2:{command}')
        return await session(gateway, 'olga', call)

    async def scenario():
        async def first_state(cell: Cell):
            await cell.until('Production', 'ActiveRecipe', 'bracket_trial')
            await cell.until('CellState', 'State', 'idle')
        await session(gateway, 'vic', first_state)
        assert await operator('Start') == [True, 'start: cell running']

        async def while_running(cell: Cell):
            await cell.write_recipe('bracket')
            await cell.until('Production', 'RecipeResult', "recipe change to 'bracket' refused: the cell is running; "
                                                           'recipes change only while it is idle or stopped')
            return await cell.read('Production', 'ActiveRecipe')
        assert await session(gateway, 'erin', while_running) == 'bracket_trial'
        assert await operator('Stop') == [True, 'stop: cell stopped']

        async def while_stopped(cell: Cell):
            await cell.write_recipe('bracket')
            await cell.until('Production', 'RecipeResult', 'recipe bracket applied')
            await cell.until('Production', 'ActiveRecipe', 'bracket')
            await cell.write_recipe('frame_rail')
            await cell.until('Production', 'RecipeResult', 'recipe frame_rail applied')
            await cell.until('Production', 'ActiveRecipe', 'frame_rail')
            await cell.write_recipe('bracket')
            await cell.until('Production', 'RecipeResult', 'recipe bracket applied')
            return await cell.read('Production', 'ActiveRecipe')
        assert await session(gateway, 'erin', while_stopped) == 'bracket'

        async def as_operator(cell: Cell):
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await cell.write_recipe('bracket')
            return await cell.read('Production', 'ActiveRecipe')
        assert await session(gateway, 'olga', as_operator) == 'bracket'
    asyncio.run(scenario())
