"""The sample PBX data is consistent, and phone numbers normalise the documented way."""

from __future__ import annotations

from collections import Counter

from noojee_desk.sim import data
from noojee_desk.sim.emulator import normalise_phone

SYSTEM_FIELDS = {"njExternalLeadId", "njCallBackDate", "njPriority", "njContactHours"}


def test_ids_are_unique_across_the_server() -> None:
    for rows in (data.TEMPLATES, data.CAMPAIGNS, data.ALLOCATIONS):
        ids = [row["id"] for row in rows]
        assert all(isinstance(i, int) for i in ids)
        assert len(ids) == len(set(ids))


def test_every_template_has_campaigns_and_every_campaign_allocations() -> None:
    template_ids = {t["id"] for t in data.TEMPLATES}
    campaign_ids = {c["id"] for c in data.CAMPAIGNS}
    assert len(template_ids) >= 2
    per_template = Counter(c["template_id"] for c in data.CAMPAIGNS)
    assert set(per_template) == template_ids
    assert min(per_template.values()) >= 2
    per_campaign = Counter(a["campaign_id"] for a in data.ALLOCATIONS)
    assert set(per_campaign) == campaign_ids
    assert min(per_campaign.values()) >= 2


def test_documented_layouts() -> None:
    home = data.template(3)
    assert home is not None
    assert home["name"] == "Home Loans"
    names = [f["name"] for f in home["fields"]]
    assert names == [
        "Name",
        "StreetAddress",
        "City",
        "State",
        "PostCode",
        "FirstPhone",
        "SecondPhone",
    ]
    assert data.phone_fields(3) == ["FirstPhone", "SecondPhone"]
    solar = data.template(7)
    assert solar is not None
    assert [f["name"] for f in solar["fields"]] == [
        "FirstName",
        "LastName",
        "Mobile",
        "HomePhone",
        "Email",
        "Suburb",
        "PostCode",
        "Notes",
    ]
    assert data.phone_fields(7) == ["Mobile", "HomePhone"]
    assert data.phone_fields(999) == []
    for template in data.TEMPLATES:
        for field in template["fields"]:
            assert {"name", "phone", "required"} <= set(field)
            assert set(field) <= {"name", "phone", "required", "label", "help_text"}
        assert any(f["phone"] for f in template["fields"])


def test_sample_leads_use_their_template_fields() -> None:
    for template_id, leads in data.SAMPLE_LEADS.items():
        template = data.template(template_id)
        assert template is not None
        names = {f["name"] for f in template["fields"]} | SYSTEM_FIELDS
        for lead in leads:
            assert set(lead) <= names
            assert all(isinstance(v, str) for v in lead.values())


def test_dnc_numbers_are_already_normalised() -> None:
    assert data.DNC_NUMBERS
    assert all(normalise_phone(n) == n for n in data.DNC_NUMBERS)
    assert "0299999999" in data.DNC_NUMBERS
    assert "Business Hours" in data.CONTACT_HOURS
    assert data.DEMO_API_KEY == "demo-key"


def test_phone_normalisation() -> None:
    assert normalise_phone("+61 412 345 678") == "0412345678"
    assert normalise_phone("61412345678") == "0412345678"
    assert normalise_phone("+61 (0)2 9999 9999") == "0299999999"
    assert normalise_phone("(02) 9999-9999") == "0299999999"
    assert normalise_phone("13 13 13") == "131313"
    assert normalise_phone("none") == ""
