"""The PySide6 desktop and tablet application. Calls app services through
:class:`app.backend.Backend`; never imports SQLAlchemy (checked by import-linter)."""
