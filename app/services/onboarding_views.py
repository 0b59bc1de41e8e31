"""Read-side queries for the partner onboarding wizard and the settings screen.

The wizard needs, before anything is saved: the packages with everything that tells them
apart, the names already in use for reps and regions (to suggest, not to impose), and the
assortment a stand would start with under a package. The settings screen needs this
device's identity and how much local work is waiting for sync. All of it comes back as
frozen rows; nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import (
    ChangeLog,
    LocalDevice,
    OpStatus,
    Package,
    Product,
    StandLocation,
    StandPartner,
)
from app.services.base import transactional
from app.services.onboarding import default_assortment


@dataclass(frozen=True)
class PackageOption:
    """One package as the wizard offers it."""

    code: str
    name: str
    rank: int
    max_stands: int
    sku_slots: int
    commission_rate: Decimal
    loyalty_multiplier: Decimal
    refill_cadence_days: int
    default_par: int
    activation_points: int
    description: str


@dataclass(frozen=True)
class OnboardingChoices:
    """What the wizard offers: packages (by rank), reps and regions already in use."""

    packages: tuple[PackageOption, ...]
    reps: tuple[str, ...]
    regions: tuple[str, ...]


@dataclass(frozen=True)
class AssortmentProduct:
    id: str
    sku: str
    name: str
    category: str
    list_price: Decimal
    pack_size: int
    #: Part of the package's default assortment.
    in_default: bool


@dataclass(frozen=True)
class AssortmentPreview:
    """Every product a new stand may carry, with the package's default ticked."""

    package_code: str
    package_name: str
    sku_slots: int
    default_par: int
    products: tuple[AssortmentProduct, ...]

    @property
    def default_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.products if p.in_default)


@dataclass(frozen=True)
class DeviceSummary:
    """This database's identity and its sync backlog."""

    device_id: str
    device_name: str
    created_at: datetime
    #: Changes recorded on this device (the device sequence).
    recorded_changes: int
    #: Changes the server has not acknowledged yet.
    pending_changes: int


def _option(p: Package) -> PackageOption:
    return PackageOption(
        code=p.code,
        name=p.name,
        rank=p.rank,
        max_stands=p.max_stands,
        sku_slots=p.sku_slots,
        commission_rate=p.commission_rate,
        loyalty_multiplier=p.loyalty_multiplier,
        refill_cadence_days=p.refill_cadence_days,
        default_par=p.default_par,
        activation_points=p.activation_points,
        description=p.description,
    )


@transactional
def list_packages(session: Session) -> list[PackageOption]:
    """The packages from the smallest to the largest."""
    return [_option(p) for p in session.scalars(select(Package).order_by(Package.rank))]


@transactional
def onboarding_choices(session: Session) -> OnboardingChoices:
    """Packages, plus the reps and regions already used (for suggestions), sorted."""
    packages = tuple(_option(p) for p in session.scalars(select(Package).order_by(Package.rank)))
    reps = session.scalars(
        select(StandLocation.assigned_rep)
        .where(StandLocation.assigned_rep.is_not(None))
        .distinct()
        .order_by(StandLocation.assigned_rep)
    )
    regions = session.scalars(
        select(StandPartner.region)
        .where(StandPartner.region.is_not(None))
        .distinct()
        .order_by(StandPartner.region)
    )
    return OnboardingChoices(packages, tuple(r for r in reps if r), tuple(r for r in regions if r))


@transactional
def assortment_preview(session: Session, package_code: str) -> AssortmentPreview:
    """The products a new stand under ``package_code`` may carry (active ones, by category
    and name) and which of them the package's default assortment picks."""
    code = (package_code or "").strip().lower()
    package = session.scalars(select(Package).where(Package.code == code)).first()
    if package is None:
        raise NotFound(f"No package {package_code!r}.", field="package_code")
    default = {p.id for p in default_assortment(session, package.sku_slots)}
    products = session.scalars(
        select(Product).where(Product.active).order_by(Product.category, Product.name)
    )
    return AssortmentPreview(
        package_code=package.code,
        package_name=package.name,
        sku_slots=package.sku_slots,
        default_par=package.default_par,
        products=tuple(
            AssortmentProduct(
                p.id, p.sku, p.name, p.category, p.list_price, p.pack_size, p.id in default
            )
            for p in products
        ),
    )


@transactional
def device_summary(session: Session) -> DeviceSummary:
    """This device's id and name, when its database was made, and its sync backlog."""
    device = session.scalars(select(LocalDevice)).first()
    if device is None:
        raise NotFound("This database has no device id; open it with the app to make one.")
    pending = session.scalar(
        select(func.count()).select_from(ChangeLog).where(ChangeLog.status == OpStatus.PENDING)
    )
    return DeviceSummary(
        device_id=device.id,
        device_name=device.name,
        created_at=device.created_at,
        recorded_changes=device.last_seq,
        pending_changes=int(pending or 0),
    )
