"""The emulator's rate limit, queue timeout, faults and control routes, in-process and over HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from helpers.waits import until

from noojee_desk.sim.emulator import Emulator

pytestmark = pytest.mark.asyncio


def _phone(i: int) -> str:
    return f"049157{i:04d}"


async def test_never_more_than_capacity_at_once(pbx, lead) -> None:
    service = 0.08
    pbx.emulator.set_faults(capacity=4, min_service=service, jitter=0.0)
    started = time.monotonic()
    responses = await asyncio.gather(*(pbx.insert(lead(phone=_phone(i))) for i in range(20)))
    elapsed = time.monotonic() - started
    assert [r.json()["code"] for r in responses] == [0] * 20
    state = pbx.emulator.state()
    assert state["max_running"] == 4
    assert state["running"] == 0
    assert state["queued"] == 0
    assert state["lead_count"] == 20
    # 20 calls, 4 at a time, each at least `service`: five rounds at least
    assert elapsed >= 5 * service
    waits = state["queue_waits"]
    assert len(waits) == 20
    # the first four start at once; most of the others had to wait (all of them, unless the
    # client was too slow to open its connections)
    assert sum(w < 0.01 for w in waits) >= 4
    assert sum(w >= service * 0.9 for w in waits) >= 12
    assert state["queue_wait"]["max"] >= 4 * service * 0.9


async def test_queue_is_first_come_first_served(pbx, lead) -> None:
    emulator = pbx.emulator
    emulator.set_faults(capacity=1, min_service=0.03)
    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(pbx.insert(lead(phone=_phone(i)))))
        # arrived: either still waiting for a slot, or its wait is on record
        await until(lambda n=i: emulator.queued + len(emulator.queue_waits) == n + 1)
    await asyncio.gather(*tasks)
    assert [x["fields"]["FirstPhone"] for x in emulator.leads()] == [_phone(i) for i in range(5)]


async def test_a_call_that_waits_too_long_answers_109_and_is_not_inserted(pbx, lead) -> None:
    pbx.emulator.set_faults(capacity=1, min_service=0.4, queue_timeout=0.1)
    responses = await asyncio.gather(*(pbx.insert(lead(phone=_phone(i))) for i in range(3)))
    answers = sorted((r.status_code, r.json()["code"]) for r in responses)
    assert answers == [(200, 0), (400, 109), (400, 109)]
    assert {r.json()["message"] for r in responses if r.status_code == 400} == {
        "TIMEOUT_TOO_MANY_CONCURRENT_REQUESTS"
    }
    state = pbx.emulator.state()
    assert state["lead_count"] == 1
    assert state["codes"]["109"] == 2
    waits = sorted(state["queue_waits"])
    assert waits[0] < 0.1
    assert 0.09 <= waits[1] <= waits[2] < 0.4


async def test_raising_capacity_starts_waiting_calls_at_once(pbx, lead) -> None:
    emulator = pbx.emulator
    emulator.set_faults(capacity=1, min_service=0.3)
    tasks = [asyncio.create_task(pbx.insert(lead(phone=_phone(i)))) for i in range(3)]
    await until(lambda: emulator.queued == 2)
    emulator.capacity = 3
    assert (emulator.running, emulator.queued) == (3, 0)
    await asyncio.gather(*tasks)
    assert emulator.state()["max_running"] == 3


async def test_failure_rate_answers_500_103_without_inserting(pbx, lead) -> None:
    pbx.emulator.set_faults(failure_rate=1.0)
    response = await pbx.insert(lead())
    assert response.status_code == 500
    assert response.json()["code"] == 103
    assert pbx.emulator.state()["lead_count"] == 0
    pbx.emulator.set_faults(failure_rate=0.5)
    responses = await asyncio.gather(*(pbx.insert(lead(phone=_phone(i))) for i in range(20)))
    codes = [r.json()["code"] for r in responses]
    assert 0 < codes.count(103) < 20
    assert pbx.emulator.state()["lead_count"] == codes.count(0)


async def test_a_drop_inserts_the_lead_and_cuts_the_connection(pbx, lead) -> None:
    pbx.emulator.drop_rate = 1.0
    fields = lead(njExternalLeadId="drop-1")
    with pytest.raises(httpx.TransportError) as caught:
        await pbx.insert(fields)
    assert not isinstance(caught.value, httpx.TimeoutException)
    if pbx.mode == "in-process":
        assert isinstance(caught.value, httpx.RemoteProtocolError)
    state = pbx.emulator.state()
    assert state["lead_count"] == 1
    assert state["drops"] == 1
    pbx.emulator.drop_rate = 0.0
    retry = await pbx.insert(fields)
    assert retry.json() == {"code": 112, "message": "DUPLICATE_EXTERNAL_ID"}


async def test_import_window_fails_every_insert_until_it_ends(pbx, lead) -> None:
    pbx.emulator.start_import(60)
    response = await pbx.insert(lead())
    assert (response.status_code, response.json()["code"]) == (500, 103)
    assert "import" in response.json()["message"]
    assert pbx.emulator.state()["lead_count"] == 0
    assert pbx.emulator.faults()["import_remaining"] > 50
    pbx.emulator.start_import(0)
    assert (await pbx.insert(lead())).json()["code"] == 0


async def test_import_window_ends_by_itself(lead) -> None:
    now = [1000.0]
    emulator = Emulator(min_service=0.0, jitter=0.0, clock=lambda: now[0])
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://pbx") as client:
        url = "/servicemanager/rest/CampaignAPI/insertLeadFast"
        params = {"apiKey": "demo-key", "fTemplateId": 3, "fCampaignId": 42, "fAllocationId": 101}
        emulator.start_import(120)
        assert (await client.post(url, params=params, json=lead())).json()["code"] == 103
        now[0] += 119.9
        assert (await client.post(url, params=params, json=lead())).json()["code"] == 103
        now[0] += 0.2
        assert (await client.post(url, params=params, json=lead())).json()["code"] == 0


async def test_client_timeout_does_not_stop_the_server(pbx, lead) -> None:
    pbx.emulator.set_faults(min_service=0.3)
    with pytest.raises(httpx.ReadTimeout):
        await pbx.insert(lead(), timeout=httpx.Timeout(5.0, read=0.05))
    await until(lambda: pbx.emulator.state()["lead_count"] == 1)


async def test_down_in_process_is_a_connect_error_and_keeps_state(lead) -> None:
    now = [50.0]
    emulator = Emulator(min_service=0.0, jitter=0.0, clock=lambda: now[0])
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://pbx") as client:
        url = "/servicemanager/rest/CampaignAPI/insertLeadFast"
        params = {"apiKey": "demo-key", "fTemplateId": 3, "fCampaignId": 42, "fAllocationId": 101}
        assert (await client.post(url, params=params, json=lead())).json()["code"] == 0
        emulator.down = True
        with pytest.raises(httpx.ConnectError):
            await client.post(url, params=params, json=lead(phone="0491570110"))
        with pytest.raises(httpx.ConnectError):
            await client.get("/__sim/state")
        emulator.down = False
        assert (await client.post(url, params=params, json=lead())).json()["code"] == 105
        emulator.set_down(True, seconds=30)
        with pytest.raises(httpx.ConnectError):
            await client.post(url, params=params, json=lead(phone="0491570110"))
        now[0] += 30
        assert not emulator.down
        assert (await client.post(url, params=params, json=lead(phone="0491570110"))).json() == {
            "code": 0,
            "message": "OK",
        }
        assert emulator.state()["lead_count"] == 2


# -- control routes ---------------------------------------------------------------------------


async def test_state_route(pbx, lead) -> None:
    await pbx.insert(lead(njExternalLeadId="s-1"), allocation=102)
    await pbx.insert(lead(phone="0299999999"))
    await pbx.get("getCampaignTemplateList", apiKey="bad")
    state = (await pbx.client.get("/__sim/state")).json()
    assert state["lead_count"] == 1
    assert state["calls"] == 3
    assert state["insert_calls"] == 2
    assert state["codes"] == {"0": 1, "104": 1}
    assert state["http_statuses"] == {"200": 1, "400": 1, "403": 1}
    assert state["max_running"] == 1
    assert state["queue_wait"]["count"] == 2
    [stored] = state["leads"]
    assert (stored["campaign_id"], stored["allocation_id"], stored["external_id"]) == (
        42,
        102,
        "s-1",
    )
    assert stored["fields"]["FirstPhone"] == "0370101234"
    brief = (await pbx.client.get("/__sim/state", params={"leads": "0"})).json()
    assert "leads" not in brief
    assert brief["lead_count"] == 1


async def test_faults_route(pbx, lead) -> None:
    response = await pbx.client.post("/__sim/faults", json={"failure_rate": 1, "capacity": 2})
    assert response.status_code == 200
    assert response.json()["faults"]["capacity"] == 2
    assert pbx.emulator.capacity == 2
    assert (await pbx.insert(lead())).json()["code"] == 103
    response = await pbx.client.post(
        "/__sim/faults", json={"failure_rate": 0, "import_seconds": 60}
    )
    assert response.json()["faults"]["import_remaining"] > 0
    assert (await pbx.insert(lead())).json()["code"] == 103
    await pbx.client.post("/__sim/faults", json={"import_seconds": 0})
    assert (await pbx.insert(lead())).json()["code"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"failure_rate": 2},
        {"capacity": 0},
        {"capacity": 1.5},
        {"queue_timeout": "soon"},
        {"turbo": True},
        {"min_service": -1},
    ],
)
async def test_faults_route_refuses_bad_values_and_changes_nothing(pbx, body) -> None:
    before = pbx.emulator.faults()
    response = await pbx.client.post("/__sim/faults", json={"drop_rate": 0.5, **body})
    assert response.status_code == 400
    assert response.json()["error"]
    assert pbx.emulator.faults() == before


async def test_faults_route_refuses_a_body_that_is_not_an_object(pbx) -> None:
    response = await pbx.client.post("/__sim/faults", content=b"[1, 2")
    assert response.status_code == 400
    response = await pbx.client.post("/__sim/faults", json=[1])
    assert response.status_code == 400


async def test_key_route(pbx, lead) -> None:
    response = await pbx.client.post("/__sim/key", json={"api_key": "k-2"})
    assert response.status_code == 200
    assert (await pbx.insert(lead())).status_code == 403
    assert (await pbx.insert(lead(), key="k-2")).json()["code"] == 0
    assert (await pbx.client.post("/__sim/key", json={"api_key": ""})).status_code == 400
    assert (await pbx.client.post("/__sim/key", json={})).status_code == 400
    assert pbx.emulator.api_key == "k-2"


async def test_reset_route(pbx, lead) -> None:
    await pbx.insert(lead())
    pbx.emulator.set_faults(failure_rate=0.5, capacity=3)
    response = await pbx.client.post("/__sim/reset")
    assert response.status_code == 200
    state = pbx.emulator.state()
    assert state["lead_count"] == 0
    assert state["calls"] == 0
    assert state["faults"]["failure_rate"] == 0.0
    assert state["faults"]["capacity"] == 3
    assert (await pbx.insert(lead())).json()["code"] == 0


async def test_unknown_control_route(pbx) -> None:
    assert (await pbx.client.get("/__sim/nothing")).status_code == 404
    assert (await pbx.client.get("/__sim/reset")).status_code == 405
