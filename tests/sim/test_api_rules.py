"""The emulator's Campaign API rules, in-process and over HTTP: lists, codes and error pages."""

from __future__ import annotations

import pytest

from noojee_desk.sim import data

pytestmark = pytest.mark.asyncio


def _is_html(response) -> bool:
    return response.headers["content-type"].startswith("text/html") and response.text.startswith(
        "<!doctype html>"
    )


# -- list calls -------------------------------------------------------------------------------


async def test_template_list_is_shaped_like_the_reference(pbx) -> None:
    response = await pbx.get("getCampaignTemplateList")
    assert response.status_code == 200
    assert response.json() == {
        "type": "CampaignTemplate",
        "entities": [
            {"id": 3, "name": "Home Loans"},
            {"id": 7, "name": "Solar Quotes"},
            {
                "id": 12,
                "name": "Insurance Renewals",
            },
            {"id": 15, "name": "Super Health Check"},
            {"id": 18, "name": "Partner Referrals"},
        ],
        "code": 0,
        "message": "OK",
    }


async def test_campaign_and_allocation_lists_follow_the_ids(pbx) -> None:
    campaigns = (await pbx.get("getCampaignList", fTemplateId=7)).json()
    assert campaigns["type"] == "Campaign"
    assert campaigns["code"] == 0
    assert campaigns["message"] == "OK"
    assert campaigns["entities"] == [
        {"id": 51, "name": "Solar NSW"},
        {"id": 52, "name": "Solar VIC"},
        {"id": 55, "name": "Battery Upgrade"},
    ]
    allocations = (await pbx.get("getAllocationList", fCampaignId=42)).json()
    assert allocations == {
        "type": "Allocation",
        "entities": [
            {"id": 101, "name": "January list"},
            {"id": 102, "name": "Web enquiries"},
            {"id": 103, "name": "Referrals"},
        ],
        "code": 0,
        "message": "OK",
    }


async def test_list_of_an_unknown_id_is_empty(pbx) -> None:
    response = await pbx.get("getCampaignList", fTemplateId=9999)
    assert response.status_code == 200
    assert response.json()["entities"] == []


@pytest.mark.parametrize(
    ("method", "params"),
    [("getCampaignList", {}), ("getAllocationList", {"fCampaignId": "abc"})],
)
async def test_list_without_a_usable_id_is_code_103(pbx, method, params) -> None:
    response = await pbx.get(method, **params)
    assert response.status_code == 400
    assert response.json()["code"] == 103


@pytest.mark.parametrize("key", ["wrong", ""])
async def test_wrong_or_empty_key_is_a_403_html_page(pbx, key) -> None:
    response = await pbx.get("getCampaignTemplateList", apiKey=key)
    assert response.status_code == 403
    assert _is_html(response)
    assert "403" in response.text


async def test_missing_key_is_a_403_html_page(pbx) -> None:
    response = await pbx.client.get("/servicemanager/rest/CampaignAPI/getCampaignTemplateList")
    assert response.status_code == 403
    assert _is_html(response)


@pytest.mark.parametrize(
    "path",
    [
        "/servicemanager/rest/CampaignAPI/insertLeadsFast",
        "/servicemanager/rest/CampaignAPI/",
        "/",
        "/servicemanager/rest/Other/getCampaignTemplateList",
    ],
)
async def test_unknown_path_is_a_404_html_page(pbx, path) -> None:
    response = await pbx.client.get(path, params={"apiKey": data.DEMO_API_KEY})
    assert response.status_code == 404
    assert _is_html(response)


async def test_wrong_verb_is_a_405_html_page(pbx) -> None:
    response = await pbx.client.get(
        "/servicemanager/rest/CampaignAPI/insertLeadFast", params={"apiKey": data.DEMO_API_KEY}
    )
    assert response.status_code == 405
    assert _is_html(response)
    assert response.headers["allow"] == "POST"


# -- insertLeadFast -------------------------------------------------------------------------


async def test_insert_ok_records_the_lead(pbx, lead) -> None:
    fields = lead(njExternalLeadId="ext-1")
    response = await pbx.insert(fields, campaign=44, allocation=111)
    assert response.status_code == 200
    assert response.json() == {"code": 0, "message": "OK"}
    [stored] = pbx.emulator.state()["leads"]
    assert stored["campaign_id"] == 44
    assert stored["allocation_id"] == 111
    assert stored["template_id"] == 3
    assert stored["external_id"] == "ext-1"
    assert stored["fields"] == fields
    assert stored["inserted_at"]


async def test_wrong_key_on_insert_is_403_and_nothing_is_inserted(pbx, lead) -> None:
    response = await pbx.insert(lead(), key="nope")
    assert response.status_code == 403
    assert _is_html(response)
    response = await pbx.insert(lead(), key=None)
    assert response.status_code == 403
    assert pbx.emulator.state()["lead_count"] == 0


@pytest.mark.parametrize(
    "content",
    [
        b'[{"Name":"x","FirstPhone":"0370101234"}]',
        b'{"Name":"x","FirstPhone":370101234}',
        b'{"Name":null,"FirstPhone":"0370101234"}',
        b"Name=x&FirstPhone=0370101234",
        b"",
        b'{"Name":"\xff","FirstPhone":"0370101234"}',
        b'"just a string"',
    ],
)
async def test_a_body_that_is_not_one_object_of_strings_is_400_code_103(pbx, content) -> None:
    response = await pbx.insert(None, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 103
    assert body["message"].startswith("EXCEPTION")
    assert pbx.emulator.state()["lead_count"] == 0


async def test_a_body_that_is_not_json_typed_is_a_415_page(pbx) -> None:
    response = await pbx.insert(
        None, content=b'{"Name":"x"}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert _is_html(response)


@pytest.mark.parametrize(
    ("ids", "what"),
    [
        ({"template": 99}, "Template"),
        ({"template": "three"}, "Template"),
        ({"template": None}, "Template"),
        ({"campaign": 51}, "Campaign"),  # a campaign of another template
        ({"campaign": 4242}, "Campaign"),
        ({"allocation": 110}, "Allocation"),  # an allocation of another campaign
        ({"allocation": None}, "Allocation"),
    ],
)
async def test_unknown_or_inconsistent_ids_are_500_code_103(pbx, lead, ids, what) -> None:
    response = await pbx.insert(lead(), **ids)
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == 103
    assert body["message"].startswith(what)
    assert body["message"].endswith("not found")
    assert pbx.emulator.state()["lead_count"] == 0


async def test_each_rule_answers_its_code(pbx, lead) -> None:
    cases = [
        (lead(City="<NO CHANGE>"), 108, "IMPORT_BUT_NOCHANGE_SPECIFIED"),
        (lead(phone=""), 102, "NO_PHONE_FIELDS"),
        (lead(phone="   ", City="0412345678"), 102, "NO_PHONE_FIELDS"),
        (lead(njContactHours="Lunchtime"), 111, "INVALID_TIMEZONE_SPECIFIED"),
        (lead(phone="02 9999 9999"), 104, "DNC"),
        (lead(phone="0370101111", SecondPhone="+61 412 000 000"), 104, "DNC"),
    ]
    for fields, code, name in cases:
        response = await pbx.insert(fields)
        assert (response.status_code, response.json()) == (400, {"code": code, "message": name})
    assert pbx.emulator.state()["lead_count"] == 0
    assert pbx.emulator.state()["codes"] == {"102": 2, "104": 2, "108": 1, "111": 1}


async def test_rules_apply_in_the_documented_order(pbx, lead) -> None:
    assert (await pbx.insert(lead(njExternalLeadId="A"))).json()["code"] == 0
    both = {"phone": "", "City": "<NO CHANGE>"}
    assert (await pbx.insert(lead(**both))).json()["code"] == 108
    bad_hours_and_dnc = lead(phone="0299999999", njContactHours="Nope")
    assert (await pbx.insert(bad_hours_and_dnc)).json()["code"] == 111
    dnc_and_used_id = lead(phone="0299999999", njExternalLeadId="A")
    assert (await pbx.insert(dnc_and_used_id)).json()["code"] == 104
    used_id_and_phone = lead(njExternalLeadId="A")
    assert (await pbx.insert(used_id_and_phone)).json()["code"] == 112
    assert (await pbx.insert(lead(njExternalLeadId="B"))).json()["code"] == 105


async def test_duplicates_compare_normalised_phones_within_the_campaign(pbx, lead) -> None:
    assert (await pbx.insert(lead(phone="+61 3 7010 1234"))).json()["code"] == 0
    for same in ("0370101234", "03 7010 1234", "(03) 7010-1234", "61370101234"):
        response = await pbx.insert(lead(phone=same))
        assert response.json() == {"code": 105, "message": "DUPLICATE"}, same
    # the second phone field counts too
    response = await pbx.insert(lead(phone="0491570156", SecondPhone="0370101234"))
    assert response.json()["code"] == 105
    # another campaign of the same template is another list
    assert (await pbx.insert(lead(), campaign=44, allocation=110)).json()["code"] == 0
    # allowDuplicates lets it in
    assert (await pbx.insert(lead(), allow_duplicates=True)).json()["code"] == 0
    assert pbx.emulator.state()["lead_count"] == 3


async def test_external_ids_are_unique_per_campaign(pbx, lead) -> None:
    assert (await pbx.insert(lead(njExternalLeadId="X-1"))).json()["code"] == 0
    again = await pbx.insert(lead(phone="0491570157", njExternalLeadId="X-1"), allocation=102)
    assert again.json() == {"code": 112, "message": "DUPLICATE_EXTERNAL_ID"}
    other = await pbx.insert(lead(njExternalLeadId="X-1"), campaign=47, allocation=120)
    assert other.json()["code"] == 0
    # an empty external id is no external id
    assert (await pbx.insert(lead(phone="0491570158", njExternalLeadId=""))).json()["code"] == 0
    assert (await pbx.insert(lead(phone="0491570159", njExternalLeadId=""))).json()["code"] == 0


async def test_known_contact_hours_and_system_fields_are_accepted(pbx, lead) -> None:
    fields = lead(
        njContactHours="Evenings", njPriority="5", njCallBackDate="2025/03/31 14:30", Extra="kept"
    )
    assert (await pbx.insert(fields)).json()["code"] == 0
    assert pbx.emulator.leads()[0]["fields"]["Extra"] == "kept"


@pytest.mark.parametrize(
    "extra",
    [
        {"njPriority": "urgent"},
        {"njPriority": "101"},
        {"njPriority": "²"},  # a digit to str.isdigit, not a number
        {"njCallBackDate": "31/03/2025 14:30"},
    ],
)
async def test_bad_system_fields_are_400_code_103(pbx, lead, extra) -> None:
    response = await pbx.insert(lead(**extra))
    assert response.status_code == 400
    assert response.json()["code"] == 103
    assert pbx.emulator.state()["lead_count"] == 0


async def test_second_template_uses_its_own_phone_fields(pbx) -> None:
    solar = {"FirstName": "Olivia", "LastName": "Brown", "PostCode": "2042"}
    ids = {"template": 7, "campaign": 51, "allocation": 130}
    assert (await pbx.insert(solar, **ids)).json()["code"] == 102
    assert (await pbx.insert({**solar, "HomePhone": "0255504411"}, **ids)).json()["code"] == 0
    # FirstPhone is not a phone field of this template
    assert (await pbx.insert({**solar, "FirstPhone": "0255504412"}, **ids)).json()["code"] == 102


async def test_sample_leads_answer_what_their_comments_say(pbx) -> None:
    campaign_of = {3: (42, 101), 7: (51, 130), 12: (60, 160), 15: (70, 180), 18: (80, 200)}
    answers = []
    for template_id, leads in data.SAMPLE_LEADS.items():
        campaign, allocation = campaign_of[template_id]
        for fields in leads:
            response = await pbx.insert(
                fields, template=template_id, campaign=campaign, allocation=allocation
            )
            answers.append(response.json()["code"])
    assert sorted(answers) == sorted([0] * 12 + [104, 102, 111, 102])
