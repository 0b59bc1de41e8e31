"""The stand's QR payment label: drawn once, output as a picture (PNG) or for print (PDF).

The label is 100 × 150 mm, the common thermal shipping-label size, which also prints on A6
sheets. It is monochrome so it prints the same on thermal and laser printers: "Pay here",
the stand and partner, the QR code of the stand's payment payload (``app.rules.qr_payload``),
the payment reference in large type for people who pay by transfer, and a short instruction.

The same painting code serves the PNG, the PDF and the on-screen preview. In the PDF the text
stays text and the QR code is vector shapes (the union of its dark modules), so it prints
sharp at any printer resolution. Nothing here needs a window: only a QGuiApplication, so it
works on the offscreen platform too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import segno
from PySide6.QtCore import QFile, QIODevice, QMarginsF, QPointF, QRect, QRectF, QSizeF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QImage,
    QImageWriter,
    QPageLayout,
    QPageSize,
    QPainter,
    QPainterPath,
    QPdfWriter,
    QPen,
    QRegion,
)

from app import __version__
from app.rules import payment_reference, qr_payload
from ui.i18n import tr

#: Label size in millimetres (width, height): portrait 100 × 150 mm.
LABEL_MM = (100.0, 150.0)
#: Resolution of the PNG export; 300 dpi is what label printers and print shops expect.
PNG_DPI = 300
#: Resolution of the PDF's coordinate grid (text and QR shapes are vectors regardless).
PDF_DPI = 1200
#: Modules of white around the QR code, as the QR standard asks.
QUIET_ZONE = 4
#: Error correction "M" survives about 15 % damage; segno raises it when it costs no size.
QR_ERROR = "m"

INK = QColor("#000000")
SOFT_INK = QColor("#444444")
PAPER = QColor("#ffffff")


@dataclass(frozen=True)
class LabelData:
    """What a label shows. ``payload`` is what the QR code encodes."""

    stand_id: str
    stand_name: str
    partner_name: str
    reference: str
    payload: str

    @classmethod
    def for_stand(cls, stand_id: str, stand_name: str, partner_name: str) -> LabelData:
        """The label of a stand with this id, with the reference and payload it gets from
        its id (``app.rules``): exact before the stand is saved."""
        reference = payment_reference(stand_id)
        return cls(stand_id, stand_name, partner_name, reference, qr_payload(stand_id, reference))


def qr_matrix(payload: str) -> list[list[bool]]:
    """The QR code's modules (True = dark), without the quiet zone."""
    code = segno.make(payload, error=QR_ERROR, micro=False)
    return [[bool(v) for v in row] for row in code.matrix]


@dataclass(frozen=True)
class QrGeometry:
    """Where the QR code's modules sit on a page (device units): the top-left of the first
    module and the side of one module. The quiet zone lies outside ``x, y``."""

    x: float
    y: float
    module: float
    count: int

    def module_rect(self, row: int, col: int) -> QRectF:
        return QRectF(
            self.x + col * self.module, self.y + row * self.module, self.module, self.module
        )


def _mm(page: QRectF) -> float:
    """Device units per millimetre on this page."""
    return page.width() / LABEL_MM[0]


def qr_geometry(page: QRectF, count: int) -> QrGeometry:
    """Place a ``count`` × ``count`` QR code (plus quiet zone) in its box on the label.

    Modules are a whole number of device units, so on a bitmap every module is the same
    number of pixels and the code stays sharp and readable.
    """
    mm = _mm(page)
    box = 66.0 * mm
    module = float(max(1, int(box / (count + 2 * QUIET_ZONE))))
    side = module * count
    x = page.left() + (page.width() - side) / 2
    top = page.top() + 37.0 * mm + (box - side) / 2
    return QrGeometry(round(x), round(top), module, count)


def _font(pixels: float, *, bold: bool = False, mono: bool = False) -> QFont:
    font = (
        QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        if mono
        else QFont(QGuiApplication.font())
    )
    font.setPixelSize(max(1, round(pixels)))
    font.setBold(bold)
    font.setStyleStrategy(QFont.StyleStrategy.PreferAntialias)
    return font


def _fitted_text(
    painter: QPainter,
    box: QRectF,
    text: str,
    largest: float,
    smallest: float,
    *,
    bold: bool = False,
    mono: bool = False,
    wrap: bool = True,
) -> None:
    """Draw ``text`` centred in ``box`` at the largest size (in device units) that fits;
    at the smallest size, whatever still does not fit is elided."""
    flags = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter
    wrap_flag = Qt.TextFlag.TextWordWrap if wrap else Qt.TextFlag(0)
    size = largest
    while True:
        font = _font(size, bold=bold, mono=mono)
        painter.setFont(font)
        needed = painter.boundingRect(box, int(flags) | int(wrap_flag), text)
        if (needed.width() <= box.width() and needed.height() <= box.height()) or size <= smallest:
            break
        size = max(smallest, size * 0.92)
    if needed.width() > box.width() or needed.height() > box.height():
        # Still too long at the smallest size: one line, elided in the middle.
        elided = painter.fontMetrics().elidedText(
            text, Qt.TextElideMode.ElideMiddle, int(box.width())
        )
        painter.drawText(box, int(flags), elided)
        return
    painter.drawText(box, int(flags) | int(wrap_flag), text)


def _qr_path(matrix: list[list[bool]], geo: QrGeometry) -> QPainterPath:
    """The dark modules as one outline (their union), so a PDF viewer never shows hairline
    seams between neighbouring squares. Modules sit on whole device units (see
    ``qr_geometry``), so the union is exact."""
    dark = QRegion()
    x0, y0, m = round(geo.x), round(geo.y), round(geo.module)
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            dark = dark.united(QRect(x0 + start * m, y0 + r * m, (c - start) * m, m))
    path = QPainterPath()
    path.addRegion(dark)
    return path.simplified()


def paint_label(painter: QPainter, page: QRectF, data: LabelData) -> None:
    """Draw the label into ``page`` (device units; the label's 100 × 150 mm proportions)."""
    mm = _mm(page)
    left, top, width = page.left(), page.top(), page.width()
    inner = QRectF(left + 6 * mm, top, width - 12 * mm, page.height())

    def band(y: float, height: float) -> QRectF:
        return QRectF(inner.left(), top + y * mm, inner.width(), height * mm)

    painter.save()
    painter.fillRect(page, PAPER)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
    painter.setPen(INK)
    _fitted_text(painter, band(5, 15), tr("Pay here"), 13 * mm, 8 * mm, bold=True, wrap=False)
    painter.fillRect(QRectF(inner.left(), top + 21 * mm, inner.width(), 0.8 * mm), INK)
    _fitted_text(painter, band(23, 9), data.stand_name, 6.5 * mm, 3.5 * mm, bold=True)
    painter.setPen(SOFT_INK)
    _fitted_text(painter, band(32, 5), data.partner_name, 4.2 * mm, 3.0 * mm, wrap=False)

    matrix = qr_matrix(data.payload)
    geo = qr_geometry(page, len(matrix))
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    painter.fillPath(_qr_path(matrix, geo), INK)

    painter.setPen(SOFT_INK)
    _fitted_text(painter, band(104, 5), tr("Payment reference"), 3.6 * mm, 2.8 * mm, wrap=False)
    painter.setPen(INK)
    _fitted_text(painter, band(109, 11), data.reference, 9 * mm, 5 * mm, bold=True, mono=True)
    painter.setPen(QPen(INK, 0.3 * mm))
    painter.drawLine(QPointF(inner.left(), top + 123 * mm), QPointF(inner.right(), top + 123 * mm))
    _fitted_text(
        painter,
        band(125, 16),
        tr(
            "Scan the code with your banking or payment app, or quote the reference when you "
            "pay by bank transfer. Thank you!"
        ),
        3.9 * mm,
        2.8 * mm,
    )
    painter.setPen(SOFT_INK)
    _fitted_text(
        painter,
        band(142, 5),
        tr("Stand Program · stand {short_id}").format(short_id=data.stand_id[-12:]),
        2.6 * mm,
        2.0 * mm,
        wrap=False,
    )
    painter.restore()


def label_size_px(dpi: int = PNG_DPI) -> tuple[int, int]:
    """The label's size in pixels at ``dpi``."""
    return round(LABEL_MM[0] / 25.4 * dpi), round(LABEL_MM[1] / 25.4 * dpi)


def render_label(data: LabelData, dpi: int = PNG_DPI) -> QImage:
    """The label as an image at ``dpi`` (300 dpi: 1181 × 1772 px), white background."""
    width, height = label_size_px(dpi)
    image = QImage(width, height, QImage.Format.Format_RGB32)
    dots_per_metre = round(dpi / 0.0254)
    image.setDotsPerMeterX(dots_per_metre)
    image.setDotsPerMeterY(dots_per_metre)
    image.fill(PAPER)
    painter = QPainter(image)
    try:
        paint_label(painter, QRectF(0, 0, width, height), data)
    finally:
        painter.end()
    return image


def export_png(data: LabelData, path: str | Path, dpi: int = PNG_DPI) -> Path:
    """Write the label as a PNG at ``dpi`` (the print size is stored in the file)."""
    target = Path(path)
    writer = QImageWriter(str(target), b"png")
    if not writer.write(render_label(data, dpi)):
        raise OSError(
            tr("Could not write {path}: {reason}").format(path=target, reason=writer.errorString())
        )
    return target


def export_pdf(data: LabelData, path: str | Path) -> Path:
    """Write the label as a one-page 100 × 150 mm PDF with vector text and QR code."""
    target = Path(path)
    # Open the file ourselves: a folder that is gone or read-only becomes a clear error
    # instead of a painter that silently draws nowhere.
    file = QFile(str(target))
    if not file.open(QIODevice.OpenModeFlag.WriteOnly | QIODevice.OpenModeFlag.Truncate):
        raise OSError(
            tr("Could not write {path}: {reason}").format(path=target, reason=file.errorString())
        )
    try:
        writer = QPdfWriter(file)
        writer.setTitle(tr("Payment label: {stand}").format(stand=data.stand_name))
        writer.setCreator(f"Stand Program OS {__version__}")
        writer.setResolution(PDF_DPI)
        writer.setPageLayout(
            QPageLayout(
                QPageSize(QSizeF(*LABEL_MM), QPageSize.Unit.Millimeter, tr("Label 100 × 150 mm")),
                QPageLayout.Orientation.Portrait,
                QMarginsF(0, 0, 0, 0),
            )
        )
        painter = QPainter()
        if not painter.begin(writer):
            raise OSError(tr("Could not write {path}.").format(path=target))
        try:
            page = QRectF(writer.pageLayout().paintRectPixels(writer.resolution()))
            paint_label(painter, QRectF(0, 0, page.width(), page.height()), data)
        finally:
            painter.end()
        del writer  # finishes the PDF before the file closes
    finally:
        file.close()
    return target
