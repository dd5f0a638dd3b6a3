"""Draw the app icon with QPainter and write it as PNG, ICO (Windows) and ICNS (macOS) files."""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QGuiApplication,
    QImage,
    QImageWriter,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPen,
)

ROOT = Path(__file__).resolve().parent.parent
NAME = "noojee-desk"
#: Entries of the Windows icon: small ones as bitmaps (what every Windows shell reads), 256 as PNG.
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64, 128)
ICO_PNG_SIZE = 256
#: ICNS chunk types holding PNG data, by pixel size (ic10 is 512 pt at 2x).
ICNS_TYPES = {128: b"ic07", 256: b"ic08", 512: b"ic09", 1024: b"ic10"}
PNG_SIZES = {f"{NAME}.png": 256, f"{NAME}-512.png": 512}


def draw(size: int) -> QImage:
    """The icon at ``size`` pixels: a lead card on a teal tile with an orange 'send' badge."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.scale(size / 100.0, size / 100.0)
    small = size < 48

    tile = QRectF(4, 4, 92, 92)
    gradient = QLinearGradient(tile.topLeft(), tile.bottomRight())
    gradient.setColorAt(0.0, QColor("#1b8fb0"))
    gradient.setColorAt(1.0, QColor("#0b4a6e"))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QBrush(gradient))
    painter.drawRoundedRect(tile, 20, 20)

    card = QRectF(18, 20, 50, 60) if not small else QRectF(16, 18, 54, 62)
    painter.setBrush(QColor("#0a3652"))
    painter.setOpacity(0.35)
    painter.drawRoundedRect(card.translated(2, 3), 7, 7)
    painter.setOpacity(1.0)
    painter.setBrush(QColor("#ffffff"))
    painter.drawRoundedRect(card, 7, 7)

    line_pen = QPen(QColor("#9fb7c7"), 5 if small else 4.2)
    line_pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(line_pen)
    rows = (34.0, 50.0) if small else (33.0, 44.0, 55.0)
    for index, y in enumerate(rows):
        right = card.right() - (9 if index % 2 == 0 else 17)
        painter.drawLine(QPointF(card.left() + 9, y), QPointF(right, y))
    painter.setPen(Qt.PenStyle.NoPen)

    centre = QPointF(68, 68)
    radius = 20.0 if not small else 22.0
    painter.setBrush(QColor("#ffffff"))
    painter.drawEllipse(centre, radius + 3, radius + 3)
    painter.setBrush(QColor("#f28b1f"))
    painter.drawEllipse(centre, radius, radius)

    arrow = QPainterPath()
    s = radius / 20.0
    cx, cy = centre.x(), centre.y()
    arrow.moveTo(cx - 10 * s, cy - 3.5 * s)
    arrow.lineTo(cx + 1 * s, cy - 3.5 * s)
    arrow.lineTo(cx + 1 * s, cy - 10 * s)
    arrow.lineTo(cx + 12 * s, cy)
    arrow.lineTo(cx + 1 * s, cy + 10 * s)
    arrow.lineTo(cx + 1 * s, cy + 3.5 * s)
    arrow.lineTo(cx - 10 * s, cy + 3.5 * s)
    arrow.closeSubpath()
    painter.setBrush(QColor("#ffffff"))
    painter.drawPath(arrow)
    painter.end()
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def encode(image: QImage, fmt: str) -> bytes:
    """The image written by Qt's writer for ``fmt`` ('png' or 'ico'), as bytes."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buffer, fmt.encode())
    if not writer.write(image):
        raise RuntimeError(f"Qt could not write {fmt}: {writer.errorString()}")
    buffer.close()
    return bytes(data.data())


def ico_from_qt(images: list[QImage], png_image: QImage | None = None) -> bytes:
    """One multi-size ICO: each image written by Qt's ICO writer, plus an optional PNG entry.

    Qt writes one image per ICO file; this takes the directory entry and bitmap of each and puts
    them into a single container (ICONDIR, one ICONDIRENTRY per size, then the image data).
    """
    entries: list[tuple[bytes, bytes]] = []  # (12-byte entry head without size/offset, data)
    for image in images:
        blob = encode(image, "ico")
        _reserved, kind, count = struct.unpack_from("<HHH", blob, 0)
        if kind != 1 or count != 1:
            raise RuntimeError("unexpected ICO written by Qt")
        head = blob[6:14]
        size, offset = struct.unpack_from("<II", blob, 14)
        entries.append((head, blob[offset : offset + size]))
    if png_image is not None:
        png = encode(png_image, "png")
        w = png_image.width() if png_image.width() < 256 else 0
        h = png_image.height() if png_image.height() < 256 else 0
        entries.append((struct.pack("<BBBBHH", w, h, 0, 0, 1, 32), png))
    out = bytearray(struct.pack("<HHH", 0, 1, len(entries)))
    offset = 6 + 16 * len(entries)
    for head, data in entries:
        out += head + struct.pack("<II", len(data), offset)
        offset += len(data)
    for _head, data in entries:
        out += data
    return bytes(out)


def icns(chunks: dict[bytes, bytes]) -> bytes:
    """An ICNS container: 'icns' + total length, then (type, length incl. 8-byte head, PNG)."""
    body = b"".join(kind + struct.pack(">I", len(png) + 8) + png for kind, png in chunks.items())
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def write_all(out_dir: Path, package_copy: Path | None) -> list[Path]:
    """Write every icon file into ``out_dir`` (and the window icon copy); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cache: dict[int, QImage] = {}

    def at(size: int) -> QImage:
        if size not in cache:
            cache[size] = draw(size)
        return cache[size]

    written: list[Path] = []
    for name, size in PNG_SIZES.items():
        path = out_dir / name
        path.write_bytes(encode(at(size), "png"))
        written.append(path)
    ico = out_dir / f"{NAME}.ico"
    ico.write_bytes(ico_from_qt([at(s) for s in ICO_SIZES], at(ICO_PNG_SIZE)))
    written.append(ico)
    icns_path = out_dir / f"{NAME}.icns"
    icns_path.write_bytes(icns({kind: encode(at(s), "png") for s, kind in ICNS_TYPES.items()}))
    written.append(icns_path)
    if package_copy is not None:
        package_copy.parent.mkdir(parents=True, exist_ok=True)
        package_copy.write_bytes((out_dir / f"{NAME}.png").read_bytes())
        written.append(package_copy)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "resources", help="output folder")
    parser.add_argument(
        "--package-copy",
        type=Path,
        default=ROOT / "noojee_desk" / "resources" / f"{NAME}.png",
        help="where the window icon (the 256 px PNG) is copied; 'none' to skip",
    )
    args = parser.parse_args(argv)
    copy = None if str(args.package_copy).lower() == "none" else args.package_copy
    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    for path in write_all(args.out, copy):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
