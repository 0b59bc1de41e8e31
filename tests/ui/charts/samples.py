"""Chart data built by hand (no database): small exact cases for assertions and realistic
generated ones for looks."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from app.kpi.model import (
    FunnelStage,
    RefillFlow,
    RevenueSeries,
    SellThroughHeatmap,
    SkuUnits,
    StandRanking,
    StandValue,
    StockEvent,
    StockSeries,
    Unit,
)

START = date(2024, 11, 4)  # a Monday
CITIES = (("Berlin", 52.52, 13.40), ("Potsdam", 52.39, 13.06), ("Leipzig", 51.34, 12.37))
PRODUCTS = (
    "Sparkling water 0.5 l",
    "Cola zero 0.33 l",
    "Chocolate bar dark",
    "Trail mix 150 g",
    "Chewing gum mint",
    "Energy drink 0.25 l",
    "Iced tea peach",
    "Salted pretzels",
    "Protein bar vanilla",
    "Apple juice 0.2 l",
    "Gummy bears 100 g",
    "Paper tissues",
    "Phone charger USB-C",
    "Lip balm",
    "Sunscreen 50 ml",
    "Batteries AA 4-pack",
    "Coffee to go",
    "Croissant",
    "Mints tin",
    "Rice crackers",
)


def days(n: int, start: date = START) -> tuple[date, ...]:
    return tuple(start + timedelta(days=i) for i in range(n))


def revenue(n: int = 28, seed: int = 1, currency: str = "EUR") -> RevenueSeries:
    rng = np.random.default_rng(seed)
    base = 180 + 60 * np.sin(np.arange(n) / 3.5)
    weekend = np.array([1.35 if d.weekday() >= 5 else 1.0 for d in days(n)])
    now = (base * weekend + rng.normal(0, 25, n)).clip(0)
    before = (base * weekend * 0.85 + rng.normal(0, 25, n)).clip(0)
    return RevenueSeries(
        days=days(n),
        revenue=tuple(Decimal(f"{v:.2f}") for v in now),
        prior=tuple(Decimal(f"{v:.2f}") for v in before),
        currency=currency,
    )


def stock(n: int = 30) -> StockSeries:
    level, on_hand, deliveries, counts = 24, [], [], []
    ds = days(n)
    for i, day in enumerate(ds):
        level = max(0, level - (2 if i % 3 else 3))
        if i in (9, 22):
            deliveries.append(StockEvent(day, 20))
            level += 20
        if i == 15:
            counts.append(StockEvent(day, -2, counted=level - 2))
            level -= 2
        on_hand.append(level)
    return StockSeries(
        product_id="p-water",
        product_name="Sparkling water 0.5 l",
        days=ds,
        on_hand=tuple(on_hand),
        par_level=24,
        reorder_point=8,
        deliveries=tuple(deliveries),
        counts=tuple(counts),
    )


def skus(n: int = 20) -> tuple[SkuUnits, ...]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        units = int(rng.integers(0, 140))
        out.append(
            SkuUnits(
                product_id=f"p{i}",
                product_name=PRODUCTS[i % len(PRODUCTS)] + ("" if i < len(PRODUCTS) else " XL"),
                units=units,
                revenue=Decimal(units) * Decimal("1.90"),
                sell_through=None if i == 5 else Decimal(f"{rng.uniform(0.1, 0.95):.3f}"),
            )
        )
    return tuple(out)


def stands(n: int = 12, *, without_coordinates: int = 0) -> tuple[StandValue, ...]:
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        city, lat, lon = CITIES[i % len(CITIES)]
        missing = i >= n - without_coordinates
        out.append(
            StandValue(
                stand_id=f"s{i}",
                stand_name=f"Kiosk {['am Markt', 'Hauptbahnhof', 'Uni-Campus', 'Ost'][i % 4]} {i}",
                city=city,
                latitude=None if missing else lat + float(rng.normal(0, 0.04)),
                longitude=None if missing else lon + float(rng.normal(0, 0.06)),
                value=Decimal(f"{rng.uniform(300, 4200):.2f}"),
            )
        )
    out.sort(key=lambda s: s.value or 0, reverse=True)
    return tuple(out)


def ranking(n: int = 12, unit: Unit = Unit.MONEY) -> StandRanking:
    return StandRanking(
        kpi_key="revenue",
        kpi_label="Revenue",
        unit=unit,
        currency="EUR",
        stands=stands(n),
    )


def heatmap(rows: int = 8, cols: int = 12) -> SellThroughHeatmap:
    rng = np.random.default_rng(7)
    values = tuple(
        tuple(
            None if rng.random() < 0.12 else Decimal(f"{rng.uniform(0.05, 0.98):.3f}")
            for _ in range(cols)
        )
        for _ in range(rows)
    )
    return SellThroughHeatmap(
        stand_ids=tuple(f"s{i}" for i in range(rows)),
        stand_names=tuple(f"Kiosk {i} {CITIES[i % 3][0]}" for i in range(rows)),
        product_ids=tuple(f"p{j}" for j in range(cols)),
        product_names=tuple(PRODUCTS[j % len(PRODUCTS)] for j in range(cols)),
        values=values,
    )


def refill_flow() -> RefillFlow:
    rng = np.random.default_rng(11)
    return RefillFlow(
        funnel=(
            FunnelStage("requested", "Requested", 40),
            FunnelStage("approved", "Approved", 34),
            FunnelStage("scheduled", "Scheduled", 30),
            FunnelStage("delivered", "Delivered", 27),
            FunnelStage("confirmed", "Confirmed", 9),
        ),
        rejected=4,
        cancelled=2,
        cycle_hours=tuple(float(h) for h in rng.gamma(3.0, 22.0, 60)),
    )
