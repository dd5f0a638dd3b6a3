"""getFieldDefn and getFieldList in their documented shapes, and a PBX too old to have them."""

from __future__ import annotations

import httpx
import pytest

from noojee_desk.sim.emulator import API_PREFIX, Emulator

pytestmark = pytest.mark.asyncio

SUPER_KEYS = [
    "address_1",
    "Best_Contact_Time",
    "email",
    "name_first",
    "name_last",
    "name_title",
    "Notes",
    "phone",
    "postcode",
    "state",
    "suburb",
    "Superfund",
]


def _is_html(response: httpx.Response) -> bool:
    return response.headers["content-type"].startswith("text/html") and response.text.startswith(
        "<!doctype html>"
    )


async def test_field_defn_is_a_bare_array_like_the_live_answer(pbx) -> None:
    response = await pbx.get("getFieldDefn", fTemplateId=15)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [
        {"type": "unicode", "key": key, "required": False, "label": key, "help_text": key}
        for key in SUPER_KEYS
    ]
    # the exact bytes the reference shows: compact JSON, keys in its order
    assert response.text.startswith(
        '[{"type":"unicode","key":"address_1","required":false,"label":"address_1",'
        '"help_text":"address_1"},'
    )


async def test_field_defn_gives_labels_and_required_fields(pbx) -> None:
    referrals = (await pbx.get("getFieldDefn", fTemplateId="18")).json()
    assert referrals == [
        {
            "type": "unicode",
            "key": "full_name",
            "required": True,
            "label": "Full Name",
            "help_text": "The person referred",
        },
        {
            "type": "unicode",
            "key": "company",
            "required": False,
            "label": "Company",
            "help_text": "Where they work",
        },
        {
            "type": "unicode",
            "key": "contact_a",
            "required": False,
            "label": "Contact A",
            "help_text": "Best number for the first call",
        },
        {
            "type": "unicode",
            "key": "referred_by",
            "required": False,
            "label": "Referred By",
            "help_text": "The partner who sent the lead",
        },
        {
            "type": "unicode",
            "key": "referrer_phone",
            "required": False,
            "label": "Referrer Phone",
            "help_text": "The partner's own number",
        },
        {
            "type": "unicode",
            "key": "notes",
            "required": False,
            "label": "Notes",
            "help_text": "Anything the agent should know",
        },
    ]
    home = (await pbx.get("getFieldDefn", fTemplateId=3)).json()
    assert [(f["key"], f["required"]) for f in home] == [
        ("Name", True),
        ("StreetAddress", False),
        ("City", False),
        ("State", False),
        ("PostCode", False),
        ("FirstPhone", True),
        ("SecondPhone", False),
    ]
    # neither call says which fields are dialable
    assert all(set(f) == {"type", "key", "required", "label", "help_text"} for f in home)


async def test_field_list_is_shaped_like_the_other_lists(pbx) -> None:
    response = await pbx.get("getFieldList", fTemplateId=15)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "code": 0,
        "message": "OK",
        "entities": [{"id": 1501 + i, "name": key} for i, key in enumerate(SUPER_KEYS)],
    }
    assert list(response.json()) == ["code", "message", "entities"]
    referrals = (await pbx.get("getFieldList", fTemplateId=18)).json()["entities"]
    assert referrals == [
        {"id": 1801, "name": "full_name"},
        {"id": 1802, "name": "company"},
        {"id": 1803, "name": "contact_a"},
        {"id": 1804, "name": "referred_by"},
        {"id": 1805, "name": "referrer_phone"},
        {"id": 1806, "name": "notes"},
    ]


async def test_an_unknown_template_has_no_fields(pbx) -> None:
    defn = await pbx.get("getFieldDefn", fTemplateId=999)
    assert (defn.status_code, defn.json()) == (200, [])
    listed = await pbx.get("getFieldList", fTemplateId=999)
    assert (listed.status_code, listed.json()) == (
        200,
        {"code": 0, "message": "OK", "entities": []},
    )


@pytest.mark.parametrize("method", ["getFieldDefn", "getFieldList"])
@pytest.mark.parametrize("params", [{}, {"fTemplateId": ""}, {"fTemplateId": "three"}])
async def test_a_missing_or_bad_template_id_is_400_code_103(pbx, method, params) -> None:
    response = await pbx.get(method, **params)
    assert response.status_code == 400
    assert response.json() == {
        "code": 103,
        "message": "EXCEPTION: fTemplateId is missing or not a number",
    }


@pytest.mark.parametrize("method", ["getFieldDefn", "getFieldList"])
async def test_a_bad_or_missing_key_is_a_403_page(pbx, method) -> None:
    response = await pbx.get(method, fTemplateId=15, apiKey="wrong")
    assert response.status_code == 403
    assert _is_html(response)
    response = await pbx.client.get(API_PREFIX + method, params={"fTemplateId": 15})
    assert response.status_code == 403
    assert _is_html(response)


@pytest.mark.parametrize("method", ["getFieldDefn", "getFieldList"])
async def test_field_calls_are_get_only(pbx, method) -> None:
    response = await pbx.client.post(
        API_PREFIX + method, params={"fTemplateId": 15, "apiKey": "demo-key"}
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert _is_html(response)


async def test_a_contact_a_field_is_dialable_and_nothing_else_is(pbx) -> None:
    ids = {"template": 18, "campaign": 80, "allocation": 200}
    lead = {"full_name": "Grace Kelly", "notes": "mobile 0491570006", "contact_a": ""}
    assert (await pbx.insert(lead, **ids)).json()["code"] == 102
    assert (await pbx.insert({**lead, "phone": "0491570006"}, **ids)).json()["code"] == 102
    response = await pbx.insert({**lead, "contact_a": "0491570006"}, **ids)
    assert (response.status_code, response.json()["code"]) == (200, 0)
    # contact_a is what duplicates and the DNC list are checked on
    assert (await pbx.insert({**lead, "contact_a": "+61491570006"}, **ids)).json()["code"] == 105
    assert (await pbx.insert({**lead, "contact_a": "02 9999 9999"}, **ids)).json()["code"] == 104
    assert [x["fields"]["contact_a"] for x in pbx.emulator.leads()] == ["0491570006"]


async def test_the_snake_case_template_dials_phone(pbx) -> None:
    ids = {"template": 15, "campaign": 70, "allocation": 180}
    lead = {"name_first": "Priya", "name_last": "Sharma", "postcode": "2026", "state": "NSW"}
    assert (await pbx.insert(lead, **ids)).json()["code"] == 102
    assert (await pbx.insert({**lead, "phone": "0491572549"}, **ids)).json()["code"] == 0


# -- an older PBX without the field calls -----------------------------------------------------


async def _old_pbx_answers(client: httpx.AsyncClient, key: str = "demo-key") -> None:
    for method in ("getFieldDefn", "getFieldList"):
        response = await client.get(API_PREFIX + method, params={"fTemplateId": 3, "apiKey": key})
        assert response.status_code == 404
        assert _is_html(response)
        assert "HTTP Status 404" in response.text
    # the rest of the API is still there
    listed = await client.get(API_PREFIX + "getCampaignTemplateList", params={"apiKey": key})
    assert listed.status_code == 200


async def test_an_old_pbx_answers_the_field_calls_with_a_404_page() -> None:
    emulator = Emulator(field_calls=False, min_service=0.0, jitter=0.0)
    assert emulator.faults()["field_calls"] is False
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://pbx") as client:
        await _old_pbx_answers(client)
        # an unknown path is matched before the key, as for any other unknown method
        response = await client.get(API_PREFIX + "getFieldDefn", params={"apiKey": "bad"})
        assert response.status_code == 404


async def test_the_field_calls_switch_through_the_faults_route(pbx) -> None:
    response = await pbx.client.post("/__sim/faults", json={"field_calls": False})
    assert response.status_code == 200
    assert response.json()["faults"]["field_calls"] is False
    await _old_pbx_answers(pbx.client)
    # a reset keeps the PBX's version: it is not a fault that wears off
    assert (await pbx.client.post("/__sim/reset")).status_code == 200
    assert (await pbx.client.get("/__sim/state")).json()["faults"]["field_calls"] is False
    await pbx.client.post("/__sim/faults", json={"field_calls": True})
    assert (await pbx.get("getFieldDefn", fTemplateId=3)).status_code == 200
    refused = await pbx.client.post("/__sim/faults", json={"field_calls": "no"})
    assert refused.status_code == 400
    assert pbx.emulator.field_calls is True
