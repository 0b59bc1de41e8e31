"""The QR payment label: rendered offscreen, exported as PNG and PDF, readable by a scanner
(every module where segno puts it, with its quiet zone)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage

from app.ids import new_id
from app.rules import is_valid_payment_reference, payment_reference, qr_payload
from ui.labels import (
    QUIET_ZONE,
    LabelData,
    export_pdf,
    export_png,
    label_size_px,
    qr_geometry,
    qr_matrix,
    render_label,
)


@pytest.fixture
def data() -> LabelData:
    return LabelData.for_stand(new_id(), "Kiosk am Markt", "Kiosk am Markt GmbH")


def _dark(image: QImage, x: float, y: float) -> bool:
    return image.pixelColor(int(x), int(y)).lightness() < 128


def _assert_qr_matches(image: QImage, payload: str) -> None:
    """Sample the centre of every module (and the quiet zone around the code)."""
    matrix = qr_matrix(payload)
    geo = qr_geometry(QRectF(0, 0, image.width(), image.height()), len(matrix))
    assert geo.module >= 3  # at least 3 px a module at print resolution
    n = len(matrix)
    for r in range(-QUIET_ZONE, n + QUIET_ZONE):
        for c in range(-QUIET_ZONE, n + QUIET_ZONE):
            centre = geo.module_rect(r, c).center()
            inside = 0 <= r < n and 0 <= c < n
            expected = matrix[r][c] if inside else False
            assert _dark(image, centre.x(), centre.y()) == expected, (r, c)


def test_label_data_is_the_stands_reference_and_payload() -> None:
    stand_id = new_id()
    data = LabelData.for_stand(stand_id, "Café Central", "Café Central KG")
    assert data.reference == payment_reference(stand_id)
    assert is_valid_payment_reference(data.reference)
    assert data.payload == qr_payload(stand_id, data.reference)


def test_render_at_print_resolution(qapp: object, data: LabelData) -> None:
    image = render_label(data)
    assert (image.width(), image.height()) == label_size_px(300) == (1181, 1772)
    assert round(image.dotsPerMeterX() * 0.0254) == 300
    _assert_qr_matches(image, data.payload)
    # Text was drawn above and below the code (the title band and the reference band).
    geo = qr_geometry(QRectF(0, 0, image.width(), image.height()), len(qr_matrix(data.payload)))
    title_band = [
        _dark(image, x, y)
        for x in range(0, image.width(), 4)
        for y in range(60, int(geo.y) - 80, 4)
    ]
    assert any(title_band)


def test_a_small_preview_still_has_every_module(qapp: object, data: LabelData) -> None:
    image = render_label(data, dpi=120)
    assert (image.width(), image.height()) == label_size_px(120)
    _assert_qr_matches(image, data.payload)


def test_long_names_fit(qapp: object) -> None:
    data = LabelData.for_stand(new_id(), "Kiosk " * 20, "Partner with a very long name " * 4)
    image = render_label(data, dpi=150)
    _assert_qr_matches(image, data.payload)


def test_png_export(qapp: object, data: LabelData, tmp_path: Path) -> None:
    path = export_png(data, tmp_path / "label.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = QImage(str(path))
    assert not image.isNull()
    assert (image.width(), image.height()) == (1181, 1772)
    assert round(image.dotsPerMeterX() * 0.0254) == 300
    _assert_qr_matches(image, data.payload)


def test_png_export_to_a_folder_that_does_not_exist(
    qapp: object, data: LabelData, tmp_path: Path
) -> None:
    with pytest.raises(OSError, match="Could not write"):
        export_png(data, tmp_path / "missing" / "label.png")


def test_pdf_export_to_a_folder_that_does_not_exist(
    qapp: object, data: LabelData, tmp_path: Path
) -> None:
    with pytest.raises(OSError, match="Could not write"):
        export_pdf(data, tmp_path / "missing" / "label.pdf")


def test_pdf_export(qapp: object, data: LabelData, tmp_path: Path) -> None:
    path = export_pdf(data, tmp_path / "label.pdf")
    content = path.read_bytes()
    assert content.startswith(b"%PDF")
    box = re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", content)
    assert box is not None
    # 100 x 150 mm is 283.46 x 425.20 pt; Qt rounds a custom page to whole points.
    assert float(box.group(1)) == pytest.approx(283.46, abs=1)
    assert float(box.group(2)) == pytest.approx(425.20, abs=1)

    if shutil.which("pdftoppm") is None:
        return  # poppler-utils not installed: the checks above are what we can do
    subprocess.run(
        ["pdftoppm", "-r", "300", "-png", "-singlefile", str(path), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    page = QImage(str(tmp_path / "page.png"))
    assert abs(page.width() - 1181) <= 2
    assert abs(page.height() - 1772) <= 2
    _assert_qr_matches(page, data.payload)
    if shutil.which("pdftotext") is not None:
        # Vector text: the words are in the PDF as text, not pixels.
        out = subprocess.run(
            ["pdftotext", str(path), "-"], check=True, capture_output=True, text=True, timeout=60
        ).stdout
        assert "Pay here" in out
        assert data.reference in out
        assert "Kiosk am Markt" in out
