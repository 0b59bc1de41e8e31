"""The wire: the endpoint contract (pydantic), the server (FastAPI), the sync client (httpx)
and the adapters to neighbouring services.

Nothing is here yet: the server and sync arrive with their own issues. The domain core
already writes every mutation to the change log (app/models/changelog.py) that sync will
push. This package may import app, never PySide6 or ui (checked by import-linter).
"""
