"""AGV handoff: wire codec validation, cell-side server steps and timeouts, interlock, fleet-side client."""
import json

import pytest

from cell_control.logistics.handoff import (
    ClientActionKind, HandoffClient, HandoffError, HandoffKind, HandoffRequest, HandoffResult, HandoffServer,
    HandoffStatus, HandoffStep, HandoffTimeouts, decode_request, decode_result, encode_request,
    encode_result)

LOAD = HandoffRequest('r1', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P1', 10.0)
UNLOAD = HandoffRequest('r2', HandoffKind.UNLOAD_FROM_CELL, 'agv_2', 'outbound', 'P0', 10.0)
TIMEOUTS = HandoffTimeouts(docked_s=30.0, cell_s=100.0, rollers_s=3.0, part_s=8.0)


def test_request_and_result_round_trip():
    assert decode_request(encode_request(LOAD)) == LOAD
    assert decode_request(encode_request(UNLOAD)) == UNLOAD
    result = HandoffResult('r1', HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_CELL, 'waiting', 3.5)
    assert decode_result(encode_result(result)) == result
    assert json.loads(encode_request(LOAD))['kind'] == 'load_to_cell'


@pytest.mark.parametrize('change, field', [
    ({'kind': 'teleport'}, "'kind'"),
    ({'time': 'soon'}, "'time'"),
    ({'time': True}, "'time'"),
    ({'agv': 3}, "'agv'"),
    ({'part_id': ''}, "'part_id'"),
    ({'dock': 'outbound'}, "'dock'"),
    ({'colour': 'red'}, "'colour'"),
])
def test_bad_request_field_is_named(change, field):
    data = json.loads(encode_request(LOAD)) | change
    with pytest.raises(HandoffError, match=field):
        decode_request(json.dumps(data))


def test_missing_field_and_non_json_are_refused():
    data = json.loads(encode_request(LOAD))
    del data['request_id']
    with pytest.raises(HandoffError, match="missing field 'request_id'"):
        decode_request(json.dumps(data))
    with pytest.raises(HandoffError, match='not JSON'):
        decode_request('{oops')
    with pytest.raises(HandoffError, match='JSON object'):
        decode_request('[1, 2]')
    with pytest.raises(HandoffError, match="'status'"):
        decode_result(json.dumps({'request_id': 'r', 'status': 'MAYBE', 'step': 'done', 'reason': '',
                                  'time': 1.0}))


def test_bad_timeouts_are_refused():
    with pytest.raises(HandoffError, match='rollers_s'):
        HandoffTimeouts(rollers_s=0.0)
    with pytest.raises(HandoffError, match='docked_s'):
        HandoffTimeouts(docked_s=float('inf'))


def run_to_success(server: HandoffServer, request: HandoffRequest, t: float) -> list[HandoffResult]:
    results = [server.receive(request, t)]
    results += server.agv_docked(request.dock, request.agv, True, t + 1)
    results.append(server.begin_transfer(request.dock, t + 2))
    results.append(server.rollers_running(request.dock, t + 3))
    results.append(server.part_detected(request.dock, t + 4))
    return results


def test_load_goes_through_every_step_to_success():
    server = HandoffServer(TIMEOUTS)
    results = run_to_success(server, LOAD, 10.0)
    assert [(r.status, r.step) for r in results] == [
        (HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_DOCKED),
        (HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_CELL),
        (HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_ROLLERS),
        (HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_PART),
        (HandoffStatus.SUCCESS, HandoffStep.DONE)]
    assert 'belt' in results[3].reason
    assert server.active('inbound') is None


def test_an_unloading_agv_holds_its_part_until_it_leaves_the_dock_or_a_new_transfer_begins():
    server = HandoffServer(TIMEOUTS)
    assert not server.holds_its_part('outbound', 'agv_2')
    run_to_success(server, UNLOAD, 10.0)
    assert server.holds_its_part('outbound', 'agv_2')
    assert not server.holds_its_part('outbound', 'agv_1') and not server.holds_its_part('outbound', '')
    server.agv_docked('outbound', 'agv_2', False, 20.0)
    assert not server.holds_its_part('outbound', 'agv_2')
    assert server.receive(UNLOAD, 30.0).status is HandoffStatus.SUCCESS   # the same id again: answered
    assert not server.holds_its_part('outbound', 'agv_2')
    again = HandoffRequest('r3', HandoffKind.UNLOAD_FROM_CELL, 'agv_2', 'outbound', 'P1', 40.0)
    run_to_success(server, again, 40.0)
    assert server.holds_its_part('outbound', 'agv_2')
    server.receive(HandoffRequest('r4', HandoffKind.UNLOAD_FROM_CELL, 'agv_2', 'outbound', 'P2', 50.0), 50.0)
    assert not server.holds_its_part('outbound', 'agv_2')


def test_a_load_leaves_nothing_held():
    server = HandoffServer(TIMEOUTS)
    run_to_success(server, LOAD, 10.0)
    assert not server.holds_its_part('inbound', 'agv_1')


def test_repeated_request_id_is_answered_not_executed_again():
    server = HandoffServer(TIMEOUTS)
    final = run_to_success(server, LOAD, 10.0)[-1]
    retry = HandoffRequest('r1', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P1', 99.0)
    assert server.receive(retry, 99.0) == final
    assert server.active('inbound') is None
    with pytest.raises(HandoffError, match="'r1'.*different"):
        server.receive(HandoffRequest('r1', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P9', 99.0), 99.0)


def test_repeat_while_in_progress_returns_current_step():
    server = HandoffServer(TIMEOUTS)
    server.receive(LOAD, 0.0)
    server.agv_docked('inbound', 'agv_1', True, 1.0)
    again = server.receive(LOAD, 2.0)
    assert (again.status, again.step, again.time_s) == (HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_CELL,
                                                        1.0)


def test_agv_already_docked_skips_to_await_cell():
    server = HandoffServer(TIMEOUTS)
    server.agv_docked('outbound', 'agv_2', True, 0.0)
    assert server.receive(UNLOAD, 1.0).step is HandoffStep.AWAIT_CELL


@pytest.mark.parametrize('stop_at, step, after_s', [
    (0, HandoffStep.AWAIT_DOCKED, 30.0),
    (1, HandoffStep.AWAIT_CELL, 100.0),
    (2, HandoffStep.AWAIT_ROLLERS, 3.0),
    (3, HandoffStep.AWAIT_PART, 8.0),
])
def test_every_step_times_out_into_failed_with_reason(stop_at, step, after_s):
    server = HandoffServer(TIMEOUTS)
    server.receive(LOAD, 0.0)
    calls = [lambda t: server.agv_docked('inbound', 'agv_1', True, t),
             lambda t: server.begin_transfer('inbound', t),
             lambda t: server.rollers_running('inbound', t)]
    t = 0.0
    for call in calls[:stop_at]:
        t += 1.0
        call(t)
    assert server.tick(t + after_s - 0.01) == []
    [failed] = server.tick(t + after_s)
    assert (failed.status, failed.step) == (HandoffStatus.FAILED, step)
    assert failed.reason == f'timeout in {step.value} after {after_s:g} s'
    assert server.result('r1') == failed and server.active('inbound') is None


def test_agv_leaving_mid_transfer_fails_it():
    server = HandoffServer(TIMEOUTS)
    server.receive(UNLOAD, 0.0)
    server.agv_docked('outbound', 'agv_2', True, 1.0)
    server.begin_transfer('outbound', 2.0)
    [failed] = server.agv_docked('outbound', 'agv_2', False, 3.0)
    assert failed.status is HandoffStatus.FAILED and 'left the outbound dock' in failed.reason


def test_interlock_dock_ready_only_with_live_transfer_and_docked_agv():
    server = HandoffServer(TIMEOUTS)
    assert not server.dock_ready('outbound')
    server.agv_docked('outbound', 'agv_2', True, 0.0)
    assert not server.dock_ready('outbound'), 'a docked AGV without a request is not ready to receive'
    server.receive(UNLOAD, 1.0)
    assert server.dock_ready('outbound')
    server.agv_docked('outbound', 'agv_1', True, 1.5)   # another AGV's report does not count for agv_2
    assert not server.dock_ready('outbound')
    server.agv_docked('outbound', 'agv_2', True, 1.6)
    server.begin_transfer('outbound', 2.0)
    server.agv_docked('outbound', 'agv_2', False, 3.0)
    assert not server.dock_ready('outbound')


def test_second_request_at_busy_dock_and_refusals_fail_with_reason():
    server = HandoffServer(TIMEOUTS)
    server.receive(LOAD, 0.0)
    other = HandoffRequest('r3', HandoffKind.LOAD_TO_CELL, 'agv_2', 'inbound', 'P2', 1.0)
    busy = server.receive(other, 1.0)
    assert busy.status is HandoffStatus.FAILED and "busy with request 'r1'" in busy.reason
    refused = server.receive(UNLOAD, 1.0, refuse='part P0 unknown to the cell')
    assert (refused.status, refused.reason) == (HandoffStatus.FAILED, 'part P0 unknown to the cell')
    assert server.active('outbound') is None


def test_out_of_order_calls_are_refused_by_name():
    server = HandoffServer(TIMEOUTS)
    with pytest.raises(HandoffError, match="no transfer in progress at dock 'inbound'"):
        server.part_detected('inbound', 0.0)
    server.receive(LOAD, 0.0)
    with pytest.raises(HandoffError, match='begin_transfer.*await_docked, not await_cell'):
        server.begin_transfer('inbound', 1.0)
    with pytest.raises(HandoffError, match="'dock'"):
        server.receive(HandoffRequest('r9', HandoffKind.LOAD_TO_CELL, 'agv_1', 'outbound', 'P1', 0.0), 0.0)


def test_client_retries_same_id_then_gives_up():
    client = HandoffClient(answer_timeout_s=2.0, max_attempts=3)
    [send] = client.send(LOAD, 0.0)
    assert send.kind is ClientActionKind.SEND_REQUEST and send.request == LOAD
    assert client.tick(1.9) == []
    resend = client.tick(2.0)
    assert [a.request.request_id for a in resend] == ['r1']
    assert [a.kind for a in client.tick(4.0)] == [ClientActionKind.SEND_REQUEST]
    [gave_up] = client.tick(6.0)
    assert gave_up.kind is ClientActionKind.FINISHED and gave_up.result.status is HandoffStatus.FAILED
    assert 'no answer from the cell to 3 sends' == gave_up.result.reason
    assert client.outcome('r1') == gave_up.result
    with pytest.raises(HandoffError, match="'r1' was already sent"):
        client.send(LOAD, 7.0)


def test_client_and_server_full_exchange_with_lost_message():
    server, client = HandoffServer(TIMEOUTS), HandoffClient(answer_timeout_s=2.0)
    client.send(UNLOAD, 0.0)              # lost on the wire: server never sees it
    [resend] = client.tick(2.0)
    ack = server.receive(resend.request, 2.1)
    assert client.on_result(ack, 2.1) == []
    duplicate = server.receive(resend.request, 2.2)   # a second copy arrives: answered, not executed twice
    assert duplicate == ack
    client.on_result(server.agv_docked('outbound', 'agv_2', True, 3.0)[0], 3.0)
    rollers = client.on_result(server.begin_transfer('outbound', 4.0), 4.0)
    assert [a.kind for a in rollers] == [ClientActionKind.RUN_DECK_ROLLERS]
    client.on_result(server.rollers_running('outbound', 4.5), 4.5)
    done = client.on_result(server.part_detected('outbound', 6.0), 6.0)
    assert [a.kind for a in done] == [ClientActionKind.STOP_DECK_ROLLERS, ClientActionKind.FINISHED]
    assert done[-1].result.status is HandoffStatus.SUCCESS
    assert client.on_result(done[-1].result, 7.0) == [], 'a late duplicate result is ignored'
    assert client.tick(60.0) == []


def test_client_polls_with_same_id_during_long_wait_and_stops_rollers_on_failure():
    server, client = HandoffServer(TIMEOUTS), HandoffClient(answer_timeout_s=2.0, max_attempts=2)
    client.send(LOAD, 0.0)
    client.on_result(server.receive(LOAD, 0.0), 0.0)
    client.on_result(server.agv_docked('inbound', 'agv_1', True, 1.0)[0], 1.0)
    client.on_result(server.begin_transfer('inbound', 1.5), 1.5)
    [poll] = client.tick(3.5)
    assert poll.request == LOAD
    client.on_result(server.receive(poll.request, 3.6), 3.6)
    [failed] = server.tick(20.0)
    actions = client.on_result(failed, 20.0)
    assert [a.kind for a in actions] == [ClientActionKind.STOP_DECK_ROLLERS, ClientActionKind.FINISHED]
    assert 'await_rollers' in actions[-1].result.reason


def test_client_refuses_bad_settings():
    with pytest.raises(HandoffError, match='answer_timeout_s'):
        HandoffClient(answer_timeout_s=0.0)
    with pytest.raises(HandoffError, match='max_attempts'):
        HandoffClient(max_attempts=0)


def test_a_new_id_from_the_same_agv_for_the_same_part_supersedes_its_waiting_request():
    server = HandoffServer(TIMEOUTS)
    server.agv_docked('outbound', 'agv_2', True, 0.0)
    assert server.receive(UNLOAD, 1.0).step is HandoffStep.AWAIT_CELL
    again = HandoffRequest('r2-2', HandoffKind.UNLOAD_FROM_CELL, 'agv_2', 'outbound', 'P0', 5.0)
    taken = server.receive(again, 5.0)     # the fleet gave r2 up (its answers were lost) and asks anew
    assert (taken.status, taken.step) == (HandoffStatus.ACKNOWLEDGED, HandoffStep.AWAIT_CELL)
    assert server.active('outbound') == again and server.dock_ready('outbound')
    old = server.receive(UNLOAD, 6.0)       # a late resend of the old id gets its final answer
    assert old.status is HandoffStatus.FAILED and "superseded by request 'r2-2'" in old.reason
    assert server.tick(5.0 + TIMEOUTS.cell_s - 1.0) == [], 'the new request has its own full step timeout'


@pytest.mark.parametrize('agv, part', [('agv_1', 'P0'), ('agv_2', 'P7')])
def test_another_agv_or_part_does_not_supersede(agv, part):
    server = HandoffServer(TIMEOUTS)
    server.receive(UNLOAD, 1.0)
    other = server.receive(HandoffRequest('r5', HandoffKind.UNLOAD_FROM_CELL, agv, 'outbound', part, 2.0), 2.0)
    assert other.status is HandoffStatus.FAILED and "busy with request 'r2'" in other.reason
    assert server.active('outbound') == UNLOAD


def test_a_transfer_whose_rollers_may_run_is_not_superseded():
    server = HandoffServer(TIMEOUTS)
    server.agv_docked('outbound', 'agv_2', True, 0.0)
    server.receive(UNLOAD, 1.0)
    server.begin_transfer('outbound', 2.0)
    again = HandoffRequest('r2-2', HandoffKind.UNLOAD_FROM_CELL, 'agv_2', 'outbound', 'P0', 3.0)
    assert server.receive(again, 3.0).status is HandoffStatus.FAILED
    assert server.step('outbound') is HandoffStep.AWAIT_ROLLERS
