"""Stand Program OS domain core: models, services, KPIs and the coach.

This package never imports the GUI toolkit or the network stack (checked by import-linter).
"""

__version__ = "0.1.0"
