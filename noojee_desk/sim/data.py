"""Sample PBX data for the emulator: templates with field layouts, campaigns, allocations, DNC."""

from __future__ import annotations

from typing import Final, NotRequired, TypedDict

#: The API key the emulator accepts unless told otherwise (demo mode, tests, ``noojee-desk sim``).
DEMO_API_KEY: Final = "demo-key"


class Field(TypedDict):
    """One column of a template's field layout, in the template's order.

    ``name`` is the key that goes in an insert body; ``phone`` says whether the dialler calls it
    (the PBX knows this, its field calls do not say it). ``label`` and ``help_text`` are what
    ``getFieldDefn`` shows people; both default to ``name``.
    """

    name: str
    phone: bool
    required: bool
    label: NotRequired[str]
    help_text: NotRequired[str]


class Template(TypedDict):
    id: int
    name: str
    fields: list[Field]


class Campaign(TypedDict):
    id: int
    template_id: int
    name: str


class Allocation(TypedDict):
    id: int
    campaign_id: int
    name: str


def _f(
    name: str,
    *,
    phone: bool = False,
    required: bool = False,
    label: str | None = None,
    help_text: str | None = None,
) -> Field:
    field: Field = {"name": name, "phone": phone, "required": required}
    if label is not None:
        field["label"] = label
    if help_text is not None:
        field["help_text"] = help_text
    return field


#: Templates in the order the server lists them. Ids are the server's ints (not contiguous).
TEMPLATES: Final[list[Template]] = [
    {
        "id": 3,
        "name": "Home Loans",
        "fields": [
            _f("Name", required=True),
            _f("StreetAddress"),
            _f("City"),
            _f("State"),
            _f("PostCode"),
            _f("FirstPhone", phone=True, required=True),
            _f("SecondPhone", phone=True),
        ],
    },
    {
        "id": 7,
        "name": "Solar Quotes",
        "fields": [
            _f("FirstName", required=True),
            _f("LastName", required=True),
            _f("Mobile", phone=True),
            _f("HomePhone", phone=True),
            _f("Email"),
            _f("Suburb"),
            _f("PostCode", required=True),
            _f("Notes"),
        ],
    },
    {
        "id": 12,
        "name": "Insurance Renewals",
        "fields": [
            _f("PolicyNumber", required=True),
            _f("Title"),
            _f("FirstName", required=True),
            _f("Surname", required=True),
            _f("Phone", phone=True, required=True),
            _f("WorkPhone", phone=True),
            _f("RenewalDate"),
            _f("Premium"),
        ],
    },
    {
        # Snake-case keys whose labels and help texts repeat the key, like a live PBX's answer.
        "id": 15,
        "name": "Super Health Check",
        "fields": [
            _f("address_1"),
            _f("Best_Contact_Time"),
            _f("email"),
            _f("name_first"),
            _f("name_last"),
            _f("name_title"),
            _f("Notes"),
            _f("phone", phone=True),
            _f("postcode"),
            _f("state"),
            _f("suburb"),
            _f("Superfund"),
        ],
    },
    {
        # The one dialable field's key and label do not say it is a phone number.
        "id": 18,
        "name": "Partner Referrals",
        "fields": [
            _f("full_name", required=True, label="Full Name", help_text="The person referred"),
            _f("company", label="Company", help_text="Where they work"),
            _f(
                "contact_a",
                phone=True,
                label="Contact A",
                help_text="Best number for the first call",
            ),
            _f("referred_by", label="Referred By", help_text="The partner who sent the lead"),
            # Named like a phone field, but the dialler never calls it: a guess from names alone
            # picks it, and the PBX answers 102 for a lead whose number is only there.
            _f("referrer_phone", label="Referrer Phone", help_text="The partner's own number"),
            _f("notes", label="Notes", help_text="Anything the agent should know"),
        ],
    },
]

#: Campaign ids are unique across the server.
CAMPAIGNS: Final[list[Campaign]] = [
    {"id": 42, "template_id": 3, "name": "Refinance Q1"},
    {"id": 44, "template_id": 3, "name": "First Home Buyers"},
    {"id": 47, "template_id": 3, "name": "Investor Loans"},
    {"id": 51, "template_id": 7, "name": "Solar NSW"},
    {"id": 52, "template_id": 7, "name": "Solar VIC"},
    {"id": 55, "template_id": 7, "name": "Battery Upgrade"},
    {"id": 60, "template_id": 12, "name": "Car Renewals"},
    {"id": 61, "template_id": 12, "name": "Home and Contents"},
    {"id": 70, "template_id": 15, "name": "Rollover Check"},
    {"id": 71, "template_id": 15, "name": "Insurance in Super"},
    {"id": 80, "template_id": 18, "name": "Accountant Partners"},
    {"id": 81, "template_id": 18, "name": "Broker Partners"},
]

#: Allocation ids are unique across the server.
ALLOCATIONS: Final[list[Allocation]] = [
    {"id": 101, "campaign_id": 42, "name": "January list"},
    {"id": 102, "campaign_id": 42, "name": "Web enquiries"},
    {"id": 103, "campaign_id": 42, "name": "Referrals"},
    {"id": 110, "campaign_id": 44, "name": "Expo leads"},
    {"id": 111, "campaign_id": 44, "name": "Web enquiries"},
    {"id": 120, "campaign_id": 47, "name": "Broker list"},
    {"id": 121, "campaign_id": 47, "name": "February list"},
    {"id": 130, "campaign_id": 51, "name": "Sydney metro"},
    {"id": 131, "campaign_id": 51, "name": "Regional NSW"},
    {"id": 132, "campaign_id": 51, "name": "Web enquiries"},
    {"id": 140, "campaign_id": 52, "name": "Melbourne metro"},
    {"id": 141, "campaign_id": 52, "name": "Regional VIC"},
    {"id": 150, "campaign_id": 55, "name": "Existing customers"},
    {"id": 151, "campaign_id": 55, "name": "Web enquiries"},
    {"id": 160, "campaign_id": 60, "name": "March renewals"},
    {"id": 161, "campaign_id": 60, "name": "April renewals"},
    {"id": 170, "campaign_id": 61, "name": "Lapsed policies"},
    {"id": 171, "campaign_id": 61, "name": "January list"},
    {"id": 180, "campaign_id": 70, "name": "Web enquiries"},
    {"id": 181, "campaign_id": 70, "name": "Seminar sign-ups"},
    {"id": 190, "campaign_id": 71, "name": "Existing members"},
    {"id": 191, "campaign_id": 71, "name": "Web enquiries"},
    {"id": 200, "campaign_id": 80, "name": "March referrals"},
    {"id": 201, "campaign_id": 80, "name": "April referrals"},
    {"id": 210, "campaign_id": 81, "name": "March referrals"},
    {"id": 211, "campaign_id": 81, "name": "April referrals"},
]

#: The Do Not Call list, in the emulator's normalised form (digits only, national format).
#: A lead with any of these in a phone field is rejected with 104 (``+61 2 9999 9999`` matches too).
DNC_NUMBERS: Final[tuple[str, ...]] = (
    "0299999999",
    "0412000000",
    "0391111111",
    "0491570737",
)

#: Contact Hours names known to the PBX; any other ``njContactHours`` value is answered with 111.
CONTACT_HOURS: Final[tuple[str, ...]] = ("Business Hours", "Evenings", "Weekends", "Perth Hours")

#: A few realistic leads per template id for demo mode. Phone numbers are from the ranges the
#: Australian regulator (ACMA) reserves for fiction. Some are made to be refused, as marked.
SAMPLE_LEADS: Final[dict[int, list[dict[str, str]]]] = {
    3: [
        {
            "Name": "Jane Smith",
            "StreetAddress": "Suite 8/10 Hoddle St",
            "City": "Abbotsford",
            "State": "Vic",
            "PostCode": "3067",
            "FirstPhone": "0370101234",
            "SecondPhone": "0491570156",
        },
        {
            "Name": "Raj Patel",
            "StreetAddress": "14 Macquarie St",
            "City": "Parramatta",
            "State": "NSW",
            "PostCode": "2150",
            "FirstPhone": "0255501877",
            "SecondPhone": "",
        },
        {
            "Name": "Mei Chen",
            "StreetAddress": "3 Boundary Rd",
            "City": "Paddington",
            "State": "Qld",
            "PostCode": "4064",
            "FirstPhone": "+61 491 570 157",
            "SecondPhone": "",
        },
        {
            "Name": "Tom O'Brien",
            "StreetAddress": "77 Hay St",
            "City": "Subiaco",
            "State": "WA",
            "PostCode": "6008",
            "FirstPhone": "0855501212",
            "SecondPhone": "",
            "njContactHours": "Perth Hours",
        },
        {  # refused: on the DNC list (104)
            "Name": "Do Not Call",
            "StreetAddress": "1 George St",
            "City": "Sydney",
            "State": "NSW",
            "PostCode": "2000",
            "FirstPhone": "02 9999 9999",
            "SecondPhone": "",
        },
        {  # refused: no phone number (102)
            "Name": "Alex Nguyen",
            "StreetAddress": "21 Rundle Mall",
            "City": "Adelaide",
            "State": "SA",
            "PostCode": "5000",
            "FirstPhone": "",
            "SecondPhone": "",
        },
    ],
    7: [
        {
            "FirstName": "Olivia",
            "LastName": "Brown",
            "Mobile": "0491570158",
            "HomePhone": "0255504411",
            "Email": "olivia.brown@example.com.au",
            "Suburb": "Newtown",
            "PostCode": "2042",
            "Notes": "North-facing roof, wants a battery quote too",
        },
        {
            "FirstName": "Jack",
            "LastName": "Wilson",
            "Mobile": "0491570159",
            "HomePhone": "",
            "Email": "jack.wilson@example.net.au",
            "Suburb": "Geelong",
            "PostCode": "3220",
            "Notes": "",
        },
        {
            "FirstName": "Aroha",
            "LastName": "Ngata",
            "Mobile": "",
            "HomePhone": "0370105555",
            "Email": "",
            "Suburb": "Frankston",
            "PostCode": "3199",
            "Notes": "Call after 5pm",
            "njContactHours": "Evenings",
        },
        {  # refused: unknown contact hours (111)
            "FirstName": "Sam",
            "LastName": "Taylor",
            "Mobile": "0491570110",
            "HomePhone": "",
            "Email": "",
            "Suburb": "Penrith",
            "PostCode": "2750",
            "Notes": "",
            "njContactHours": "Lunchtime",
        },
    ],
    12: [
        {
            "PolicyNumber": "HC-204331",
            "Title": "Ms",
            "FirstName": "Charlotte",
            "Surname": "Lee",
            "Phone": "0491570313",
            "WorkPhone": "0255509000",
            "RenewalDate": "2025-03-14",
            "Premium": "1284.50",
        },
        {
            "PolicyNumber": "CM-118702",
            "Title": "Mr",
            "FirstName": "Liam",
            "Surname": "Murphy",
            "Phone": "0491571266",
            "WorkPhone": "",
            "RenewalDate": "2025-04-02",
            "Premium": "912.00",
        },
    ],
    15: [
        {
            "name_title": "Mrs",
            "name_first": "Priya",
            "name_last": "Sharma",
            "phone": "0491572549",
            "email": "priya.sharma@example.com.au",
            "address_1": "5 Ocean St",
            "suburb": "Bondi",
            "state": "NSW",
            "postcode": "2026",
            "Best_Contact_Time": "Mornings",
            "Superfund": "Example Super",
            "Notes": "",
        },
        {
            "name_title": "Mr",
            "name_first": "Ben",
            "name_last": "Walker",
            "phone": "0370102020",
            "email": "",
            "address_1": "",
            "suburb": "Ballarat",
            "state": "VIC",
            "postcode": "3350",
            "Best_Contact_Time": "",
            "Superfund": "",
            "Notes": "Two funds to combine",
        },
    ],
    18: [
        {
            "full_name": "Grace Kelly",
            "company": "Kelly & Co Accountants",
            "contact_a": "0255507788",
            "referred_by": "Smith Partners",
            "notes": "",
        },
        {  # refused: no number in the dialable field (102)
            "full_name": "Noah Davis",
            "company": "",
            "contact_a": "",
            "referred_by": "Smith Partners",
            "notes": "Mobile 0491570006 written in the notes only",
        },
    ],
}


def template(template_id: int) -> Template | None:
    """The sample template with this id, or None."""
    return next((t for t in TEMPLATES if t["id"] == template_id), None)


def label(field: Field) -> str:
    """What people see for a field (its key when the template gives no label)."""
    return field.get("label", field["name"])


def help_text(field: Field) -> str:
    """The help text of a field (its label when the template gives none)."""
    return field.get("help_text", label(field))


def phone_fields(template_id: int) -> list[str]:
    """Names of the phone fields of a sample template, in layout order (empty if unknown)."""
    found = template(template_id)
    return [f["name"] for f in found["fields"] if f["phone"]] if found else []
