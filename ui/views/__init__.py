"""One screen per module. Every view is a QWidget built as ``View(ctx)`` with a ``title``,
``refresh()``, a ``loading`` flag, and optionally ``open(arg)`` and ``can_leave()``."""
