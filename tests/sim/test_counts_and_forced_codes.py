"""Insert calls counted per template, and answers forced with codes the emulator has no rule for."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.asyncio


async def test_insert_calls_are_counted_per_template(pbx, lead) -> None:
    solar = {"FirstName": "Olivia", "Mobile": "0491570158"}
    assert (await pbx.insert(lead())).json()["code"] == 0
    assert (await pbx.insert(lead("0491570157"))).json()["code"] == 0
    assert (await pbx.insert(solar, template=7, campaign=51, allocation=130)).status_code == 200
    # refused ones count too: each is a call spent
    assert (await pbx.insert(solar, template=7, campaign=42)).status_code == 500
    assert (await pbx.insert(lead(), template="x12")).status_code == 500
    assert (await pbx.insert(lead(), template=None)).status_code == 500
    not_one_lead = {"content": b"[]", "headers": {"Content-Type": "application/json"}}
    assert (await pbx.insert(lead(), template="03", **not_one_lead)).status_code == 400
    # a wrong key stops the call before it is an insert, as for the total
    assert (await pbx.insert(lead(), key="wrong")).status_code == 403
    await pbx.get("getFieldDefn", fTemplateId=3)
    state = (await pbx.client.get("/__sim/state", params={"leads": "0"})).json()
    assert state["insert_calls_by_template"] == {"3": 3, "7": 2, "": 1, "x12": 1}
    assert list(state["insert_calls_by_template"]) == ["3", "7", "", "x12"]
    assert state["insert_calls"] == sum(state["insert_calls_by_template"].values()) == 7
    assert pbx.emulator.insert_calls_by_template["3"] == 3
    await pbx.client.post("/__sim/reset")
    state = (await pbx.client.get("/__sim/state")).json()
    assert state["insert_calls_by_template"] == {}
    assert state["insert_calls"] == 0


async def test_a_forced_unknown_code_answers_the_next_inserts(pbx, lead) -> None:
    response = await pbx.client.post(
        "/__sim/faults", json={"forced_code": 114, "forced_status": 400, "forced_count": 2}
    )
    assert response.status_code == 200
    faults = response.json()["faults"]
    assert (faults["forced_code"], faults["forced_status"], faults["forced_count"]) == (114, 400, 2)
    first = await pbx.insert(lead())
    assert first.status_code == 400
    assert first.headers["content-type"] == "application/json"
    assert first.json()["code"] == 114
    assert isinstance(first.json()["message"], str)
    assert pbx.emulator.faults()["forced_count"] == 1
    assert (await pbx.insert(lead("0491570157"))).json()["code"] == 114
    assert pbx.emulator.state()["lead_count"] == 0  # nothing was inserted
    faults = pbx.emulator.faults()
    assert (faults["forced_code"], faults["forced_status"], faults["forced_count"]) == (
        None,
        None,
        0,
    )
    response = await pbx.insert(lead())
    assert (response.status_code, response.json()["code"]) == (200, 0)
    state = pbx.emulator.state()
    assert state["codes"] == {"0": 1, "114": 2}
    assert state["http_statuses"] == {"200": 1, "400": 2}


async def test_a_forced_code_with_a_5xx_status_and_defaults(pbx, lead) -> None:
    pbx.emulator.set_faults(forced_code=117, forced_status=503)
    response = await pbx.insert(lead())
    assert (response.status_code, response.json()["code"]) == (503, 117)
    # one insert unless told otherwise
    assert (await pbx.insert(lead())).json()["code"] == 0
    # without a status: the documented one of a known code, else 400
    pbx.emulator.set_faults(forced_code=103, forced_count=1)
    assert pbx.emulator.faults()["forced_status"] == 500
    response = await pbx.insert(lead("0491570157"))
    assert (response.status_code, response.json()["code"]) == (500, 103)
    pbx.emulator.set_faults(forced_code=114, forced_count=3)
    assert pbx.emulator.faults()["forced_status"] == 400
    assert (await pbx.insert(lead("0491570157"))).status_code == 400
    # the count can be changed or the code switched off while in force
    pbx.emulator.set_faults(forced_count=5)
    assert pbx.emulator.faults()["forced_count"] == 5
    pbx.emulator.set_faults(forced_code=None)
    assert pbx.emulator.faults()["forced_count"] == 0
    assert (await pbx.insert(lead("0491570157"))).json()["code"] == 0


async def test_a_forced_code_still_waits_its_turn(pbx, lead) -> None:
    pbx.emulator.set_faults(capacity=1, min_service=0.2, forced_code=114, forced_count=1)
    answers = await asyncio.gather(pbx.insert(lead()), pbx.insert(lead("0491570157")))
    assert sorted(r.json()["code"] for r in answers) == [0, 114]
    assert pbx.emulator.state()["max_running"] == 1
    assert max(pbx.emulator.queue_waits) >= 0.15


async def test_a_reset_ends_a_forced_code(pbx, lead) -> None:
    pbx.emulator.set_faults(forced_code=114, forced_count=10)
    assert (await pbx.client.post("/__sim/reset")).status_code == 200
    assert pbx.emulator.faults()["forced_code"] is None
    assert (await pbx.insert(lead())).json()["code"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"forced_code": "114"},
        {"forced_code": -1},
        {"forced_code": 114.0},
        {"forced_code": True},
        {"forced_code": 114, "forced_status": 99},
        {"forced_code": 114, "forced_status": 600},
        {"forced_code": 114, "forced_count": -1},
        {"forced_code": 114, "forced_count": None},
        {"forced_status": 500},  # no code in force
        {"forced_count": 3},
    ],
)
async def test_bad_forced_settings_are_refused_and_change_nothing(pbx, lead, body) -> None:
    before = pbx.emulator.faults()
    response = await pbx.client.post("/__sim/faults", json={"drop_rate": 0.5, **body})
    assert response.status_code == 400
    assert "forced_" in response.json()["error"]
    assert pbx.emulator.faults() == before
    assert (await pbx.insert(lead())).json()["code"] == 0
