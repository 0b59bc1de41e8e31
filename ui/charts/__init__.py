"""KPI charts: Qt-free draw functions (:mod:`ui.charts.draw`, :mod:`ui.charts.formats`,
:mod:`ui.charts.style`) that the PDF report reuses on a plain matplotlib ``Figure``, and the
Qt widgets that show them (:mod:`ui.charts.widget`).

Nothing is imported here, so ``import ui.charts.draw`` loads neither PySide6 nor the
widgets, and matplotlib loads only when a chart module is imported.
"""
