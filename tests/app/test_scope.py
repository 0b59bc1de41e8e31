"""Access scopes: what an admin, a manager, a rep and a partner may see, failing closed;
and the stand list's scope, region and keyset paging."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound, ValidationError
from app.ids import new_id
from app.models import Role, StandLocation
from app.services import onboarding, queries, refills
from app.services.scope import AccessScope, visible_partner, visible_refill, visible_stand
from tests.conftest import REP, CatalogProduct
from tests.helpers import assert_readable


@dataclass(frozen=True)
class Program:
    """Two regions, two reps, three partners:

    =========  ======  =================  ==========
    partner    region  stand              rep
    =========  ======  =================  ==========
    Nord GmbH  north   Kiosk Nord 1       rep.anna
    Nord GmbH  north   Kiosk Nord 2       rep.ben
    Süd GmbH   south   Apotheke Süd       rep.anna
    Ohne GmbH  (none)  Café Ohne          (none)
    =========  ======  =================  ==========
    """

    partners: dict[str, str]  # name -> id
    stands: dict[str, str]  # name -> id
    refill: str  # a refill of Apotheke Süd


def _stand(name: str, rep: str | None) -> onboarding.StandInput:
    return onboarding.StandInput(
        name=name,
        address="Hauptstr. 1",
        city="Berlin",
        location_type="kiosk",
        capacity_units=120,
        assigned_rep=rep,
    )


@pytest.fixture
def program(session: Session, catalog: list[CatalogProduct]) -> Program:
    partners, stands = {}, {}
    for partner, region, first, rep in (
        ("Nord GmbH", "north", "Kiosk Nord 1", "rep.anna"),
        ("Süd GmbH", "south", "Apotheke Süd", "rep.anna"),
        ("Ohne GmbH", None, "Café Ohne", None),
    ):
        done = onboarding.onboard_partner(
            session,
            REP,
            onboarding.PartnerInput(
                name=partner, contact_name="Eva", package_code="growth", region=region
            ),
            _stand(first, rep),
        )
        assert done.stand is not None
        partners[partner] = done.partner_id
        stands[first] = done.stand.stand_id
    extra = onboarding.add_stand(
        session, REP, partners["Nord GmbH"], _stand("Kiosk Nord 2", "rep.ben")
    )
    stands["Kiosk Nord 2"] = extra.stand_id
    refill = refills.request_refill(
        session, REP, stands["Apotheke Süd"], {catalog[0].sku: 3}
    ).refill_id
    return Program(partners, stands, refill)


def names(session: Session, access: AccessScope) -> set[str]:
    return {r.name for r in queries.list_stands(session, access=access)}


ALL = {"Kiosk Nord 1", "Kiosk Nord 2", "Apotheke Süd", "Café Ohne"}

SCOPES = [
    (AccessScope.everything(), ALL),
    (AccessScope(Role.ADMIN), ALL),
    (AccessScope(Role.MANAGER, region="north"), {"Kiosk Nord 1", "Kiosk Nord 2"}),
    (AccessScope(Role.MANAGER, region="south"), {"Apotheke Süd"}),
    (AccessScope(Role.MANAGER, region="west"), set()),
    (AccessScope(Role.REP, territory="rep.anna"), {"Kiosk Nord 1", "Apotheke Süd"}),
    (AccessScope(Role.REP, territory="rep.ben"), {"Kiosk Nord 2"}),
    # Fail closed: a scope without its value sees nothing, never everything.
    (AccessScope(Role.MANAGER), set()),
    (AccessScope(Role.MANAGER, region="  "), set()),
    (AccessScope(Role.MANAGER, territory="rep.anna"), set()),
    (AccessScope(Role.REP), set()),
    (AccessScope(Role.REP, territory=""), set()),
    (AccessScope(Role.REP, region="north"), set()),
    (AccessScope(Role.PARTNER), set()),
    (AccessScope(Role.PARTNER, region="north", territory="rep.anna"), set()),
]


@pytest.mark.parametrize(("access", "expected"), SCOPES)
def test_each_scope_sees_its_stands(
    session: Session, program: Program, access: AccessScope, expected: set[str]
) -> None:
    assert names(session, access) == expected
    for name, stand_id in program.stands.items():
        assert access.sees_stand(session, stand_id) is (name in expected)
        if name in expected:
            assert visible_stand(session, access, stand_id).id == stand_id
        else:
            with pytest.raises(NotFound):
                visible_stand(session, access, stand_id)


def test_a_partner_sees_only_its_own_stands(session: Session, program: Program) -> None:
    nord = AccessScope(Role.PARTNER, partner_id=program.partners["Nord GmbH"])
    assert names(session, nord) == {"Kiosk Nord 1", "Kiosk Nord 2"}
    assert names(session, AccessScope(Role.PARTNER, partner_id=new_id())) == set()


def test_admin_clause_is_none_and_empty_scopes_are_false(session: Session) -> None:
    assert AccessScope.everything().stand_clause() is None
    assert AccessScope.everything().partner_clause() is None
    assert AccessScope.everything() == AccessScope(Role.ADMIN)
    for access in (AccessScope(Role.MANAGER), AccessScope(Role.REP), AccessScope(Role.PARTNER)):
        clause = access.stand_clause()
        assert clause is not None
        assert str(clause.compile(compile_kwargs={"literal_binds": True})) in ("false", "0")


def test_out_of_scope_looks_exactly_like_missing(session: Session, program: Program) -> None:
    ben = AccessScope(Role.REP, territory="rep.ben")
    hidden = program.stands["Apotheke Süd"]
    missing = new_id()
    with pytest.raises(NotFound) as out_of_scope:
        visible_stand(session, ben, hidden)
    with pytest.raises(NotFound) as absent:
        visible_stand(session, ben, missing)
    assert out_of_scope.value.field == absent.value.field == "stand_id"
    assert str(out_of_scope.value) == f"No stand with id {hidden!r}."
    assert str(absent.value) == f"No stand with id {missing!r}."
    assert_readable(out_of_scope.value)
    with pytest.raises(NotFound):
        visible_stand(session, AccessScope.everything(), "not-an-id")
    assert AccessScope.everything().sees_stand(session, "not-an-id") is False
    assert AccessScope.everything().sees_stand(session, missing) is False


def test_visible_refill_follows_its_stand(session: Session, program: Program) -> None:
    for access in (
        AccessScope.everything(),
        AccessScope(Role.MANAGER, region="south"),
        AccessScope(Role.REP, territory="rep.anna"),
        AccessScope(Role.PARTNER, partner_id=program.partners["Süd GmbH"]),
    ):
        assert visible_refill(session, access, program.refill).id == program.refill
    for access in (
        AccessScope(Role.MANAGER, region="north"),
        AccessScope(Role.REP, territory="rep.ben"),
        AccessScope(Role.PARTNER, partner_id=program.partners["Nord GmbH"]),
        AccessScope(Role.MANAGER),
        AccessScope(Role.REP),
        AccessScope(Role.PARTNER),
    ):
        with pytest.raises(NotFound) as exc:
            visible_refill(session, access, program.refill)
        assert exc.value.field == "refill_id"
    with pytest.raises(NotFound):
        visible_refill(session, AccessScope.everything(), new_id())


def test_visible_partner(session: Session, program: Program) -> None:
    nord, sued, ohne = (program.partners[n] for n in ("Nord GmbH", "Süd GmbH", "Ohne GmbH"))
    cases = [
        (AccessScope.everything(), {nord, sued, ohne}),
        (AccessScope(Role.MANAGER, region="north"), {nord}),
        (AccessScope(Role.MANAGER, region="south"), {sued}),
        # A rep sees the partners with at least one stand in the territory.
        (AccessScope(Role.REP, territory="rep.anna"), {nord, sued}),
        (AccessScope(Role.REP, territory="rep.ben"), {nord}),
        (AccessScope(Role.PARTNER, partner_id=ohne), {ohne}),
        (AccessScope(Role.MANAGER), set()),
        (AccessScope(Role.REP), set()),
        (AccessScope(Role.PARTNER), set()),
    ]
    for access, expected in cases:
        for pid in (nord, sued, ohne):
            if pid in expected:
                assert visible_partner(session, access, pid).id == pid
            else:
                with pytest.raises(NotFound) as exc:
                    visible_partner(session, access, pid)
                assert exc.value.field == "partner_id"
    with pytest.raises(NotFound):
        visible_partner(session, AccessScope.everything(), new_id())


def test_list_stands_by_region(session: Session, program: Program) -> None:
    assert {r.name for r in queries.list_stands(session, region="north")} == {
        "Kiosk Nord 1",
        "Kiosk Nord 2",
    }
    assert [r.name for r in queries.list_stands(session, region="nowhere")] == []
    # Region and scope together: the intersection.
    rows = queries.list_stands(
        session, region="north", access=AccessScope(Role.REP, territory="rep.anna")
    )
    assert [r.name for r in rows] == ["Kiosk Nord 1"]
    # No arguments: the desktop's list, unchanged.
    assert {r.name for r in queries.list_stands(session)} == ALL


def _many(session: Session, catalog: list[CatalogProduct], n: int) -> list[tuple[str, str]]:
    """``n`` stands, several sharing a name (so the id breaks ties); (name, id) sorted."""
    made = []
    for i in range(n):
        done = onboarding.onboard_partner(
            session,
            REP,
            onboarding.PartnerInput(name=f"P{i}", contact_name="Eva", package_code="starter"),
            _stand(f"Stand {i % 4}", REP.user if i % 2 else None),
            stand_id=new_id(),
        )
        assert done.stand is not None
        made.append((done.stand.name, done.stand.stand_id))
    return sorted(made)


def test_keyset_paging_returns_every_stand_once_in_order(
    session: Session, catalog: list[CatalogProduct]
) -> None:
    expected = _many(session, catalog, 13)
    for limit in (1, 2, 5, 13, 50):
        seen: list[tuple[str, str]] = []
        after = None
        while True:
            page = queries.list_stands(session, limit=limit, after=after)
            assert len(page) <= limit
            if not page:
                break
            seen += [(r.name, r.id) for r in page]
            after = (page[-1].name, page[-1].id)
        assert seen == expected
    # The default order is the same stable order, page or no page.
    assert [(r.name, r.id) for r in queries.list_stands(session)] == expected
    # With a scope and other filters, paging keeps to them.
    rep = AccessScope(Role.REP, territory=REP.user)
    mine = [(r.name, r.id) for r in queries.list_stands(session, access=rep)]
    assert 0 < len(mine) < len(expected)
    seen, after = [], None
    while page := queries.list_stands(session, access=rep, limit=2, after=after):
        seen += [(r.name, r.id) for r in page]
        after = seen[-1]
    assert seen == mine


def test_keyset_paging_only_in_the_default_order(
    session: Session, catalog: list[CatalogProduct]
) -> None:
    stands = _many(session, catalog, 3)
    for kwargs in ({"order_by": "city"}, {"descending": True}):
        with pytest.raises(ValidationError) as exc:
            queries.list_stands(session, after=stands[0], **kwargs)
        assert exc.value.field == "after"
        assert_readable(exc.value)
    with pytest.raises(ValidationError):
        queries.list_stands(session, after=("only a name",))
    # After the last stand: nothing more.
    assert queries.list_stands(session, after=stands[-1]) == []


def test_sees_stand_inside_a_transaction(session: Session, program: Program) -> None:
    with session.begin():
        assert AccessScope(Role.REP, territory="rep.ben").sees_stand(
            session, program.stands["Kiosk Nord 2"]
        )
        stand = session.scalars(
            select(StandLocation).where(StandLocation.id == program.stands["Café Ohne"])
        ).one()
        assert not AccessScope(Role.REP, territory="rep.ben").sees_stand(session, stand.id)
