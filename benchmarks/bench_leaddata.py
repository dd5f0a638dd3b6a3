"""Lead data benchmark: parse + map + validate 100,000 pasted rows (TSV and Excel HTML) and a
100,000-row XLSX."""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 100_000
HEADER = [
    "Name",
    "StreetAddress",
    "City",
    "State",
    "PostCode",
    "FirstPhone",
    "SecondPhone",
    "Email",
    "njCallBackDate",
    "Notes",
]
FIRST = [
    "Jane",
    "John",
    "Mary",
    "Ahmed",
    "Wei",
    "Priya",
    "Liam",
    "Olivia",
    "Noah",
    "Chloe",
    "Lucas",
    "Mia",
    "Jack",
    "Ava",
    "Ethan",
    "Zoe",
]
LAST = [
    "Smith",
    "Nguyen",
    "Jones",
    "Williams",
    "Brown",
    "Wilson",
    "Taylor",
    "Singh",
    "Chen",
    "Martin",
    "Lee",
    "Kelly",
    "Walker",
]
STREETS = [
    "Hoddle",
    "Smith",
    "Collins",
    "Bourke",
    "Chapel",
    "Sydney",
    "Victoria",
    "George",
    "Albert",
    "Queen",
    "King",
]
PLACES = [
    ("Abbotsford", "VIC", "3067"),
    ("Richmond", "VIC", "3121"),
    ("Parramatta", "NSW", "2150"),
    ("Newtown", "NSW", "2042"),
    ("Fortitude Valley", "QLD", "4006"),
    ("Fremantle", "WA", "6160"),
    ("Glenelg", "SA", "5045"),
    ("Sandy Bay", "TAS", "7005"),
]
NOTES = [
    "",
    "",
    "Asked for a call after 5pm",
    "Existing customer, renewal due",
    "Interested in the premium plan",
    "Referred by a friend",
    "Call back re: quote 4471",
]


def _mobile(rng: random.Random) -> str:
    prefix = rng.choice(["400", "401", "402", "403", "404", "405", "406", "407", "408", "409"])
    prefix = prefix[:2] + str(rng.choice([0, 1, 2, 3, 7, 8, 9])) + prefix[2:]
    digits = f"0{prefix[:3]}{rng.randrange(1_000_000):06d}"
    style = rng.random()
    if style < 0.5:
        return f"{digits[:4]} {digits[4:7]} {digits[7:]}"
    if style < 0.8:
        return digits
    return f"+61 {digits[1:4]} {digits[4:7]} {digits[7:]}"


def _landline(rng: random.Random) -> str:
    area, lead = rng.choice([("02", "9"), ("03", "9"), ("07", "3"), ("08", "9"), ("03", "8")])
    rest = f"{lead}{rng.randrange(10_000_000):07d}"
    if rng.random() < 0.6:
        return f"({area}) {rest[:4]} {rest[4:]}"
    return area + rest


def make_rows(count: int = ROWS, seed: int = 20261225) -> list[list[str]]:
    """A realistic paste: mostly unique numbers, a few repeats, and about 1% problems."""
    rng = random.Random(seed)
    rows = [list(HEADER)]
    for index in range(count):
        city, state, postcode = rng.choice(PLACES)
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        street = f"{rng.randrange(1, 400)} {rng.choice(STREETS)} St"
        if rng.random() < 0.1:
            street = f"Unit {rng.randrange(1, 40)}/{street}"
        first = _mobile(rng) if rng.random() < 0.7 else _landline(rng)
        second = _landline(rng) if rng.random() < 0.5 else ""
        email = f"{name.split()[0].lower()}.{index}@example.com.au"
        callback = ""
        if rng.random() < 0.2:
            day, month, hour = rng.randrange(1, 29), rng.randrange(1, 13), rng.randrange(8, 18)
            callback = rng.choice(
                [
                    f"{day}/{month}/2027 {hour % 12 or 12}:30{'pm' if hour >= 12 else 'am'}",
                    f"2027-{month:02d}-{day:02d} {hour:02d}:00",
                    f"{day:02d}/{month:02d}/2027",
                ]
            )
        notes = rng.choice(NOTES)
        problem = rng.random()
        if problem < 0.002:
            first = first.replace(" ", "").lstrip("0").replace("+61", "")  # lost its leading 0
        elif problem < 0.004:
            first = f"{rng.randrange(100, 999) / 100:.2f}E+08"  # scientific notation
        elif problem < 0.005:
            first, second = "", ""  # no phone at all
        elif problem < 0.006:
            notes = "<NO CHANGE>"
        elif problem < 0.008:
            first = rows[rng.randrange(1, len(rows))][5] if len(rows) > 1 else first  # duplicate
        elif problem < 0.009:
            callback = "next tuesday"  # unreadable date
        elif problem < 0.010:
            first = first[:-3]  # too short
        if rng.random() < 0.01:
            notes = 'Said "call me"\nafter the holidays'  # a quoted multi-line cell
        rows.append([name, street, city, state, postcode, first, second, email, callback, notes])
    return rows


def to_excel_html(rows: list[list[str]]) -> str:
    """Rows as Excel for Windows puts them on the clipboard as HTML ("HTML Format")."""
    from html import escape

    def cell(text: str) -> str:
        text = escape(text, quote=False).replace("\n", "<br>\r\n    ")
        return f"  <td height=20 class=xl65 style='height:15.0pt'>{text}</td>\r\n"

    body = "".join(
        " <tr height=20 style='height:15.0pt'>\r\n" + "".join(cell(c) for c in row) + " </tr>\r\n"
        for row in rows
    )
    return (
        "Version:0.9\r\nStartHTML:0000000105\r\nEndHTML:0000000000\r\n"
        "StartFragment:0000000000\r\nEndFragment:0000000000\r\n"
        '<html xmlns:x="urn:schemas-microsoft-com:office:excel">\r\n<head>\r\n'
        "<meta name=ProgId content=Excel.Sheet>\r\n<style>\r\n<!--table\r\n"
        '\t{mso-displayed-decimal-separator:"\\.";}\r\n.xl65\r\n\t{mso-number-format:"\\@";}'
        "\r\n-->\r\n</style>\r\n</head>\r\n<body>\r\n"
        "<table border=0 cellpadding=0 cellspacing=0 width=640>\r\n<!--StartFragment-->\r\n"
        f"{body}<!--EndFragment-->\r\n</table>\r\n</body>\r\n</html>\r\n"
    )


def write_xlsx(rows: list[list[str]], path: Path) -> None:
    """An .xlsx file as Excel and Google Sheets save one: text in the shared strings table."""
    from xml.sax.saxutils import escape

    def column_name(index: int) -> str:
        name = ""
        index += 1
        while index:
            index, rest = divmod(index - 1, 26)
            name = chr(65 + rest) + name
        return name

    strings: dict[str, int] = {}
    lines = []
    for r, row in enumerate(rows, 1):
        cells = []
        for c, value in enumerate(row):
            if value == "":
                continue
            index = strings.setdefault(value, len(strings))
            cells.append(f'<c r="{column_name(c)}{r}" t="s"><v>{index}</v></c>')
        lines.append(f'<row r="{r}">{"".join(cells)}</row>')
    last = f"{column_name(len(rows[0]) - 1)}{len(rows)}"
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{main}">'
        f'<dimension ref="A1:{last}"/><sheetData>{"".join(lines)}</sheetData></worksheet>'
    )
    shared = "".join(f'<si><t xml:space="preserve">{escape(text)}</t></si>' for text in strings)
    shared = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="{main}" '
        f'count="{len(strings)}" uniqueCount="{len(strings)}">{shared}</sst>'
    )
    ct = "http://schemas.openxmlformats.org/package/2006/content-types"
    ooxml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    files = {
        "[Content_Types].xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{ct}">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ooxml}.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            f'ContentType="{ooxml}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ooxml}.sharedStrings+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships '
            'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{rel}">'
            '<sheets><sheet name="Leads" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships '
            'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": sheet,
        "xl/sharedStrings.xml": shared,
    }
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / (1024 * 1024)


def child(kind: str, path: str) -> dict[str, float]:
    """One measured run in a fresh process; prints its figures as JSON."""
    started = time.perf_counter()
    from noojee_desk.core.leads import clipboard, layouts, mapping, spreadsheets, validate

    imported = time.perf_counter()
    if kind in ("paste", "html"):
        payload = Path(path).read_text(encoding="utf-8")
    baseline = _peak_mb()
    c0 = time.process_time()
    t0 = time.perf_counter()
    if kind == "paste":
        table = clipboard.parse_clipboard({"text/plain": payload, "image/png": b"\x89PNG"})
    elif kind == "html":
        table = clipboard.parse_clipboard({"text/html": payload, "text/plain": ""})
    else:
        table = spreadsheets.read_file(path)
    t1 = time.perf_counter()
    layout = layouts.layout_from_header(table.rows[0])
    has_header, mapping = mapping.detect_mapping(table.rows[0], layout, {}, table.rows[1:21])
    records = mapping.apply_mapping(table.rows[1:] if has_header else table.rows, mapping)
    t2 = time.perf_counter()
    validator = validate.Validator(layout, validate.ValidationSettings())
    checks = validator.validate_rows(records, first_row=2)
    t3 = time.perf_counter()
    c3 = time.process_time()
    errors = sum(1 for c in checks if not c.ok)
    warned = sum(1 for c in checks if c.ok and c.problems)
    return {
        "import": imported - started,
        "read": t1 - t0,
        "map": t2 - t1,
        "validate": t3 - t2,
        "total": t3 - t0,
        "cpu": c3 - c0,
        "rows": len(checks),
        "errors": errors,
        "warned": warned,
        "peak_mb": _peak_mb(),
        "baseline_mb": baseline,
        "has_header": has_header,
    }


def phones_child(path: str) -> dict[str, float]:
    """The hot spot alone: every distinct phone cell of the paste, with and without the quick
    path (the reference path is phonenumbers' parse, is_valid_number and format_number)."""
    from noojee_desk.core import bulk
    from noojee_desk.core.leads import phones, text_tables

    rows = text_tables.parse_tsv(Path(path).read_text(encoding="utf-8")).rows
    cells = list(dict.fromkeys(c for row in rows[1:] for c in (row[5], row[6]) if c))
    figures: dict[str, float] = {"numbers": len(cells)}
    with bulk.paused_gc():
        for name, quick in (("phonenumbers", False), ("quick", True)):
            normaliser = phones.PhoneNormaliser("AU", "national", quick=quick)
            normaliser.normalise("0412 345 678")  # load the metadata first
            started = time.process_time()
            for cell in cells:
                normaliser.normalise(cell)
            figures[name] = (time.process_time() - started) / len(cells) * 1e6
    return figures


def _run(kind: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONHASHSEED="0"),
    )
    return json.loads(out.stdout)


def _report(title: str, runs: list[dict[str, float]]) -> dict[str, float]:
    print(f"\n{title}: {len(runs)} runs, each in a fresh process")
    for i, r in enumerate(runs, 1):
        print(
            f"  run {i}: read {r['read']:.2f} s, map {r['map']:.2f} s, validate "
            f"{r['validate']:.2f} s, total {r['total']:.2f} s (CPU {r['cpu']:.2f} s), "
            f"peak {r['peak_mb']:.0f} MB"
        )
    median = {
        key: statistics.median(r[key] for r in runs)
        for key in ("read", "map", "validate", "total", "cpu", "peak_mb", "import")
    }
    r = runs[0]
    print(
        f"  median: read {median['read']:.2f} s + map {median['map']:.2f} s + validate "
        f"{median['validate']:.2f} s = {median['total']:.2f} s (CPU {median['cpu']:.2f} s); peak "
        f"memory {median['peak_mb']:.0f} MB (importing the modules: {median['import']:.2f} s, "
        "not counted)"
    )
    print(
        f"  {r['rows']} leads: {r['errors']} with errors, {r['warned']} with warnings only "
        f"(header detected: {bool(r['has_header'])})"
    )
    return median


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs of the paste benchmark")
    parser.add_argument("--xlsx-runs", type=int, default=3, help="runs of the XLSX benchmark")
    parser.add_argument("--html-runs", type=int, default=3, help="runs of the HTML benchmark")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, path = args.child
        print(json.dumps(phones_child(path) if kind == "phones" else child(kind, path)))
        return 0
    print(f"Reproduce: {Path(sys.executable).name} benchmarks/bench_leaddata.py --runs {args.runs}")
    print(f"Python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs")
    rows = make_rows(args.rows)
    with tempfile.TemporaryDirectory(prefix="noojee-bench-") as folder:
        tsv = Path(folder) / "paste.tsv"
        from noojee_desk.core.leads.text_tables import to_tsv

        tsv.write_text(to_tsv(rows), encoding="utf-8")
        size = tsv.stat().st_size / 1e6
        print(f"Paste: {len(rows) - 1} rows + header, {len(HEADER)} columns, {size:.1f} MB of TSV")
        paste = _report(
            "Paste (TSV clipboard text)", [_run("paste", tsv) for _ in range(args.runs)]
        )
        verdict = "meets" if paste["total"] <= 3.0 and paste["peak_mb"] <= 500 else "MISSES"
        print(f"  target <= 3 s and <= 500 MB: {verdict}")
        hot = _run("phones", tsv)
        print(
            f"\nPhone numbers, the hot spot: {hot['numbers']:.0f} distinct cells of the paste, "
            f"CPU time per number: phonenumbers alone {hot['phonenumbers']:.1f} us, "
            f"the quick path (same answers) {hot['quick']:.1f} us"
        )
        if args.html_runs:
            page = Path(folder) / "paste.html"
            page.write_text(to_excel_html(rows), encoding="utf-8")
            size = page.stat().st_size / 1e6
            print(f"\nHTML: the same rows as Excel's clipboard HTML, {size:.1f} MB")
            _report(
                "Paste (HTML clipboard flavour)",
                [_run("html", page) for _ in range(args.html_runs)],
            )
        if args.xlsx_runs:
            book = Path(folder) / "leads.xlsx"
            write_xlsx(rows, book)
            print(f"\nXLSX: {book.stat().st_size / 1e6:.1f} MB file")
            xlsx = _report("XLSX file", [_run("xlsx", book) for _ in range(args.xlsx_runs)])
            print(f"  target <= 10 s: {'meets' if xlsx['total'] <= 10 else 'MISSES'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
