"""Shared fixtures: a real SQLite file per test, migrated by Alembic, with reference data.

Qt hygiene for the GUI tests lives in tests/ui/conftest.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.orm import Session

from app import cli
from app.db import SessionFactory, open_db
from app.models import Product, Role
from app.reference import seed_reference_data
from app.services import loyalty, onboarding
from app.services.base import Actor

if TYPE_CHECKING:
    from tests.sync.conftest import Live
    from tests.sync.world import World

REP = Actor("rep.anna", Role.REP)
OTHER_REP = Actor("rep.ben", Role.REP)
MANAGER = Actor("mgr.max", Role.MANAGER)
ADMIN = Actor("admin", Role.ADMIN)
PARTNER = Actor("partner.shop", Role.PARTNER)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'stand.db'}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database made by the real migrations, once per test session."""
    path = tmp_path_factory.mktemp("template") / "stand.db"
    open_db(f"sqlite:///{path}").kw["bind"].dispose()
    return path


@pytest.fixture
def factory(db_url: str, migrated_template: Path) -> Iterator[SessionFactory]:
    """A fresh migrated database per test: a copy of the template (migrating per test would
    be most of the suite's time). Migration itself is tested in test_migrations.py."""
    shutil.copyfile(migrated_template, db_url.split("///", 1)[1])
    sm = open_db(db_url, migrate=False)
    yield sm
    sm.kw["bind"].dispose()


@dataclass(frozen=True)
class CatalogProduct:
    id: str
    sku: str
    gtin: str
    name: str
    list_price: Decimal
    pack_size: int


def _gtin13(body12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


@pytest.fixture
def catalog(factory: SessionFactory) -> list[CatalogProduct]:
    """Packages, tiers and 30 products in 3 categories (prices 1.50 .. 16.00)."""
    out = []
    with factory() as s, s.begin():
        seed_reference_data(s)
        for i in range(30):
            p = Product(
                sku=f"SKU-{i:03d}",
                gtin=_gtin13(f"400000000{i:03d}"),
                name=f"Product {i:02d}",
                category=("snacks", "drinks", "care")[i % 3],
                list_price=Decimal("1.50") + Decimal(i) / 2,
                unit_cost=Decimal("0.9000") + Decimal(i) / 4,
                min_price=Decimal("1.00"),
                max_price=Decimal("40.00"),
                pack_size=(1, 6, 12)[i % 3] if i % 5 else 1,
            )
            s.add(p)
            s.flush()
            out.append(CatalogProduct(p.id, p.sku, p.gtin or "", p.name, p.list_price, p.pack_size))
    return out


@dataclass(frozen=True)
class StandFixture:
    partner_id: str
    stand_id: str
    product_ids: tuple[str, ...]


def make_stand(
    session: Session,
    package: str = "growth",
    *,
    name: str = "Kiosk am Markt",
    activate: bool = True,
    capacity: int = 240,
    products: list[str] | None = None,
) -> StandFixture:
    """Onboard a partner with one stand (and activate them, by default)."""
    result = onboarding.onboard_partner(
        session,
        REP,
        onboarding.PartnerInput(
            name=f"{name} GmbH",
            contact_name="Hans Müller",
            package_code=package,
            email="hans@example.com",
        ),
        onboarding.StandInput(
            name=name,
            address="Marktplatz 1",
            city="Berlin",
            location_type="kiosk",
            capacity_units=capacity,
            latitude=52.52,
            longitude=13.40,
            assigned_rep=REP.user,
            products=products,
        ),
    )
    if activate:
        loyalty.activate_partner(session, REP, result.partner_id)
    assert result.stand is not None
    return StandFixture(result.partner_id, result.stand.stand_id, result.stand.product_ids)


@pytest.fixture
def stand(factory: SessionFactory, catalog: list[CatalogProduct]) -> StandFixture:
    """An active Growth partner with one stand carrying the default assortment, no stock."""
    with factory() as s:
        return make_stand(s)


@pytest.fixture
def session(factory: SessionFactory) -> Iterator[Session]:
    with factory() as s:
        yield s


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the session (Debian's postgresql-NN binaries)."""
    from tests.pgcluster import find_pg_bin, postgres_cluster

    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed (Debian postgresql-15)")
    with postgres_cluster(bin_dir) as url:
        yield url


# ----------------------------------------------------------------- standctl in tests


ENV_VARS = ("STAND_OS_DATA_DIR", "STAND_OS_DB_URL", "STAND_OS_USER", "STAND_OS_ROLE")


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


Cli = Callable[..., Run]


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``run(*args, role=None, user="rep.anna")``: standctl on this test's data folder."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)

    def _run(*args: str, role: str | None = None, user: str = "rep.anna") -> Run:
        argv = ["--data-dir", str(tmp_path), "--user", user]
        if role:
            argv += ["--role", role]
        code = cli.main([*argv, *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return _run


# ------------------------------------------------------------------ the live server (SQLite)
# Here rather than in tests/sync/conftest.py so the desktop's sync tests (tests/ui) get the
# same real server.


@pytest.fixture(scope="session")
def world_template(
    migrated_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, World]:
    from tests.sync.world import build_world

    path = tmp_path_factory.mktemp("server_world") / "stand.db"
    shutil.copyfile(migrated_template, path)
    sm = open_db(f"sqlite:///{path}", migrate=False)
    try:
        world = build_world(sm)
    finally:
        sm.kw["bind"].dispose()
    return path, world


@pytest.fixture
def live(world_template: tuple[Path, World], tmp_path: Path) -> Iterator[Live]:
    """The server on a fresh copy of the world (SQLite), for one test."""
    from tests.sync.conftest import Live, serve  # the server stack, only where a test needs it

    path, world = world_template
    db = tmp_path / "server.db"
    shutil.copyfile(path, db)
    url = f"sqlite:///{db}"
    sm = open_db(url, migrate=False)
    with serve(url) as base:
        yield Live(base, world, sm)
    sm.kw["bind"].dispose()
