"""QR labels of request links: one label as PNG or SVG, a site's labels as a PDF sheet."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import segno
from fpdf import FPDF

# Error correction M (15 %): survives a scuffed or partly dirty label on a machine, and keeps
# the code small enough to scan from a metre at 40 mm.
ERROR = "m"
# A4, 3 × 7 labels of 70 × 42.3 mm (the common "21 per sheet" label stock).
COLUMNS, ROWS = 3, 7
LABEL_W, LABEL_H = 70.0, 297.0 / 7
CODE_MM = 34.0
# A Unicode font for names in Vietnamese (Debian's fonts-dejavu-core); without it the PDF
# core font is used, which has Latin-1 only (other letters print as '?').
UNICODE_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
UNICODE_FONT_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


@dataclass(frozen=True)
class Label:
    """What one label shows: the code's URL, a title line and a small line under it."""

    url: str
    title: str
    subtitle: str


def png(url: str, scale: int = 8) -> bytes:
    """The QR code of url as PNG (4-module quiet zone)."""
    out = io.BytesIO()
    segno.make(url, error=ERROR, micro=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def svg(url: str, title: str) -> bytes:
    """The QR code of url as SVG, titled for screen readers and print dialogs."""
    out = io.BytesIO()
    segno.make(url, error=ERROR, micro=False).save(
        out, kind="svg", scale=8, border=4, title=title, xmldecl=True, svgns=True
    )
    return out.getvalue()


def sheet(labels: list[Label], heading: str) -> bytes:
    """A PDF of labels, 21 to an A4 page; each code is a PNG image (scanners and tests read it)."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0)
    pdf.set_title(heading)
    pdf.set_creator("equipmon")
    family, text = "helvetica", _latin1
    if UNICODE_FONT.exists() and UNICODE_FONT_BOLD.exists():
        pdf.add_font("dejavu", "", str(UNICODE_FONT))
        pdf.add_font("dejavu", "B", str(UNICODE_FONT_BOLD))
        family, text = "dejavu", _as_is
    per_page = COLUMNS * ROWS
    for index, label in enumerate(labels):
        if index % per_page == 0:
            pdf.add_page()
        slot = index % per_page
        x = (slot % COLUMNS) * LABEL_W
        y = (slot // COLUMNS) * LABEL_H
        pdf.image(io.BytesIO(png(label.url, scale=4)), x=x + 3, y=y + 4, w=CODE_MM, h=CODE_MM)
        pdf.set_xy(x + CODE_MM + 5, y + 8)
        pdf.set_font(family, "B", 10)
        pdf.multi_cell(LABEL_W - CODE_MM - 8, 4.5, text(label.title), align="L")
        pdf.set_x(x + CODE_MM + 5)
        pdf.set_font(family, "", 7.5)
        pdf.multi_cell(LABEL_W - CODE_MM - 8, 3.5, text(label.subtitle), align="L")
    if not labels:
        pdf.add_page()
    return bytes(pdf.output())


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def _as_is(text: str) -> str:
    return text
