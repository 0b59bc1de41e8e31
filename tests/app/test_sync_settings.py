"""The app side of the sync settings: the server's address (checked, kept per device, never
switched under a device that has synced) and the reads of the status bar and Sync view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.errors import ValidationError
from app.models import ChangeLog, OpStatus
from app.services import sales, sync_device, sync_settings
from tests.conftest import REP, StandFixture


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://stands.example.com", "https://stands.example.com"),
        ("  http://127.0.0.1:8000/ ", "http://127.0.0.1:8000"),
        ("https://example.com/stand-os/", "https://example.com/stand-os"),
    ],
)
def test_a_server_address_is_trimmed(given: str, stored: str) -> None:
    assert sync_settings.check_server_url(given) == stored


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("", "Enter the server's address."),
        ("stands.example.com", "must start with http:// or https://"),
        ("ftp://stands.example.com", "must start with http:// or https://"),
        ("https://", "has no host name"),
        ("https://stands example.com", "has no host name"),
        ("https://stands.example.com/?x=1", "no ?query"),
    ],
)
def test_a_wrong_server_address_says_what_is_wrong(given: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        sync_settings.check_server_url(given)
    assert says in caught.value.message
    assert caught.value.field == "server_url"


def test_the_server_is_kept_and_read_back(session: Session) -> None:
    assert sync_settings.server_url(session) is None
    assert sync_settings.set_server_url(session, "https://a.example/") == "https://a.example"
    assert sync_settings.server_url(session) == "https://a.example"
    # Not synced yet: another server may still be chosen.
    assert sync_settings.set_server_url(session, "https://b.example") == "https://b.example"
    assert sync_settings.overview(session).server_url == "https://b.example"


def test_a_device_that_synced_cannot_switch_servers(session: Session) -> None:
    sync_settings.set_server_url(session, "https://a.example")
    with session.begin():
        sync_device.record_success(session)
    with pytest.raises(ValidationError) as caught:
        sync_settings.check_link_target(session, "https://b.example")
    assert "has synced with https://a.example" in caught.value.message
    with pytest.raises(ValidationError):
        sync_settings.set_server_url(session, "https://b.example")
    assert sync_settings.server_url(session) == "https://a.example"
    # The same server again (linking after unlinking) is fine.
    assert sync_settings.check_link_target(session, "https://a.example/") == "https://a.example"


def test_overview_items_and_export(session: Session, stand: StandFixture, tmp_path: Path) -> None:
    result = sales.record_sale(
        session, REP, stand.stand_id, [sales.SaleLine(stand.product_ids[0], 1)], "cash"
    )
    overview = sync_settings.overview(session)
    assert overview.server_url is None
    assert overview.status.unsent >= 1
    assert overview.status.oldest_unsent_at is not None
    assert overview.status.oldest_unsent_at <= utcnow()
    listed = sync_settings.items(session)
    sale = [i for i in listed if i.op_type == "sale.record"]
    assert [(i.kind, i.label, i.stand_id) for i in sale] == [("unsent", "Sale", stand.stand_id)]
    path = tmp_path / "unsent.jsonl"
    count = sync_settings.export_unsent(session, str(path))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert count == len(lines) == overview.status.unsent
    assert result.order_id in {line["entity_id"] for line in lines}


def test_answers_are_stored_as_the_server_gave_them(session: Session, stand: StandFixture) -> None:
    """Applied and duplicate answers (stored with one UPDATE) and a rejected one (loaded)
    each leave the op as the server answered, also for an op this session had loaded."""
    for _ in range(3):
        sales.record_sale(
            session, REP, stand.stand_id, [sales.SaleLine(stand.product_ids[0], 1)], "cash"
        )
    with session.begin():
        batch = sync_device.next_batch(session)
        ops = {
            o.op_id: o
            for o in session.scalars(select(ChangeLog).where(ChangeLog.status == OpStatus.PENDING))
        }
        assert len(batch) == len(ops) >= 3
        sent = [e["op_id"] for e in batch]
        loaded = ops[sent[0]]  # an object of this session, read before the answers
        assert loaded.status == OpStatus.PENDING
        answers = [sync_device.Answer(sent[0], "applied", "applied", 41, None, False, None)]
        answers.append(sync_device.Answer(sent[1], "duplicate", "applied", 7, None, False, None))
        answers.append(
            sync_device.Answer(sent[2], "rejected", "rejected", None, "Not carried.", False, None)
        )
        answers += [
            sync_device.Answer(op_id, "applied", "applied", 100 + n, None, False, None)
            for n, op_id in enumerate(sent[3:])
        ]
        assert sync_device.store_answers(session, answers) == 1
        assert loaded.status == OpStatus.APPLIED  # read again, not the stale PENDING
        assert loaded.server_seq == 41
    with session.begin():
        stored = {
            o.op_id: (o.status, o.server_seq, o.status_reason, o.acknowledged_at is not None)
            for o in session.scalars(select(ChangeLog).where(ChangeLog.op_id.in_(sent)))
        }
    assert stored[sent[0]] == (OpStatus.APPLIED, 41, None, True)
    assert stored[sent[1]] == (OpStatus.DUPLICATE, 7, None, True)
    assert stored[sent[2]] == (OpStatus.REJECTED, None, "Not carried.", True)
    assert all(stored[op_id][0] == OpStatus.APPLIED for op_id in sent[3:])
    with session.begin():
        assert sync_device.next_batch(session) == []
