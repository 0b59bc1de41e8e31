"""What the demo generator draws from: products, cities, streets and names.

Each demo product carries its catalog facts (name, category, list price, unit cost, pack size,
GTIN-13) and the parameters of its simulated demand: relative popularity, a yearly season
(amplitude and peak day of the year), a trend per year and how much it reacts to warm
weather. Prices are in euros; margins are between 30 % and 60 % of the list price; the
pricing guardrails (``min_price``/``max_price``) are derived from the list price and cost.

Everything here is invented: the GTINs use a made-up company prefix, the IBANs are
well-formed fakes, and e-mail addresses use the reserved ``example.de`` domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from app.models.enums import LocationType

CENT = Decimal("0.01")
#: A made-up GS1 company prefix (Germany, 400-440); item references follow it.
GTIN_PREFIX = "4012345"

CATEGORIES: tuple[str, ...] = (
    "snacks",
    "drinks",
    "confectionery",
    "personal care",
    "phone accessories",
    "household",
)


def gtin13(body: str) -> str:
    """``body`` (12 digits) followed by its GS1 check digit."""
    if len(body) != 12 or not body.isdigit():
        raise ValueError(f"a GTIN-13 body has 12 digits, not {body!r}")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def is_valid_gtin13(code: str) -> bool:
    return len(code) == 13 and code.isdigit() and gtin13(code[:12]) == code


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    category: str
    list_price: Decimal
    unit_cost: Decimal
    pack_size: int
    #: Relative share of a stand's sales at an average stand of an average type.
    popularity: float
    #: Yearly season: demand x (1 + amplitude x cos(2 pi (day of year - peak) / 365.25)).
    season_amplitude: float = 0.0
    season_peak_doy: int = 196
    #: Growth per year as a rate: demand x exp(trend x years since the start).
    trend: float = 0.0
    #: Exponent on the day's weather factor (warm days > 1): drinks > 0, umbrellas < 0.
    weather: float = 0.0

    @property
    def gtin(self) -> str:
        return gtin13(GTIN_PREFIX + f"{PRODUCTS.index(self) + 1:05d}")

    @property
    def min_price(self) -> Decimal:
        """The lowest price a sale or refill may use: 15 % off, never below cost + 10 %."""
        floor = max(self.list_price * Decimal("0.85"), self.unit_cost * Decimal("1.10"))
        return floor.quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def max_price(self) -> Decimal:
        return (self.list_price * Decimal("1.25")).quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def margin(self) -> Decimal:
        return (self.list_price - self.unit_cost) / self.list_price


def _p(
    sku: str,
    name: str,
    category: str,
    price: str,
    cost: str,
    pack: int,
    popularity: float,
    **demand: float,
) -> DemoProduct:
    season_peak = int(demand.pop("peak", 196))
    return DemoProduct(
        sku,
        name,
        category,
        Decimal(price),
        Decimal(cost),
        pack,
        popularity,
        season_peak_doy=season_peak,
        **demand,
    )


PRODUCTS: tuple[DemoProduct, ...] = (
    _p("SNK-001", "Sea Salt Crisps 40 g", "snacks", "1.49", "0.69", 12, 1.0),
    _p("SNK-002", "Paprika Crisps 40 g", "snacks", "1.49", "0.69", 12, 0.85),
    _p("SNK-003", "Salted Peanuts 150 g", "snacks", "2.29", "1.19", 10, 0.45),
    _p("SNK-004", "Trail Mix 100 g", "snacks", "2.79", "1.45", 10, 0.4, trend=0.12),
    _p("SNK-005", "Pretzel Sticks 125 g", "snacks", "1.29", "0.61", 12, 0.6),
    _p("SNK-006", "Protein Bar Chocolate 45 g", "snacks", "2.99", "1.49", 12, 0.75, trend=0.45),
    _p("SNK-007", "Granola Bar Honey 30 g", "snacks", "1.19", "0.55", 24, 0.65),
    _p("SNK-008", "Beef Jerky 25 g", "snacks", "3.99", "2.15", 10, 0.3),
    _p(
        "DRK-001",
        "Still Water 0.5 l",
        "drinks",
        "1.29",
        "0.55",
        12,
        1.2,
        season_amplitude=0.45,
        peak=200,
        weather=1.0,
    ),
    _p(
        "DRK-002",
        "Sparkling Water 0.5 l",
        "drinks",
        "1.29",
        "0.55",
        12,
        0.8,
        season_amplitude=0.4,
        peak=200,
        weather=0.9,
    ),
    _p(
        "DRK-003",
        "Cola 0.33 l",
        "drinks",
        "1.79",
        "0.80",
        12,
        1.1,
        season_amplitude=0.3,
        peak=196,
        trend=-0.15,
        weather=0.6,
    ),
    _p(
        "DRK-004",
        "Cola Zero 0.33 l",
        "drinks",
        "1.79",
        "0.80",
        12,
        0.85,
        season_amplitude=0.3,
        peak=196,
        trend=0.2,
        weather=0.6,
    ),
    _p(
        "DRK-005",
        "Orange Juice 0.33 l",
        "drinks",
        "2.29",
        "1.15",
        12,
        0.5,
        season_amplitude=0.15,
        peak=180,
        weather=0.3,
    ),
    _p(
        "DRK-006",
        "Peach Iced Tea 0.5 l",
        "drinks",
        "1.99",
        "0.89",
        12,
        0.7,
        season_amplitude=0.55,
        peak=205,
        weather=1.2,
    ),
    _p("DRK-007", "Energy Drink 0.25 l", "drinks", "2.49", "1.09", 24, 0.9, trend=0.25),
    _p(
        "DRK-008",
        "Cold Brew Coffee 0.25 l",
        "drinks",
        "2.99",
        "1.35",
        12,
        0.4,
        season_amplitude=0.35,
        peak=200,
        trend=0.6,
        weather=0.8,
    ),
    _p(
        "DRK-009",
        "Isotonic Sports Drink 0.5 l",
        "drinks",
        "2.19",
        "0.95",
        12,
        0.5,
        season_amplitude=0.35,
        peak=200,
        weather=0.8,
    ),
    _p(
        "CNF-001",
        "Milk Chocolate Bar 100 g",
        "confectionery",
        "1.69",
        "0.79",
        20,
        0.9,
        season_amplitude=0.3,
        peak=350,
        weather=-0.4,
    ),
    _p(
        "CNF-002",
        "Dark Chocolate 70 % 100 g",
        "confectionery",
        "2.49",
        "1.19",
        20,
        0.4,
        season_amplitude=0.25,
        peak=350,
        weather=-0.4,
    ),
    _p("CNF-003", "Fruit Gummies 200 g", "confectionery", "1.99", "0.89", 18, 0.7),
    _p("CNF-004", "Peppermint Chewing Gum", "confectionery", "1.19", "0.49", 24, 0.8, trend=-0.2),
    _p("CNF-005", "Sweet Licorice 150 g", "confectionery", "1.79", "0.79", 18, 0.3),
    _p("CNF-006", "Caramel Wafer", "confectionery", "0.99", "0.45", 24, 0.6),
    _p("CNF-007", "Mint Pastilles Tin", "confectionery", "1.99", "0.85", 12, 0.5),
    _p(
        "PCR-001",
        "Hand Sanitizer 50 ml",
        "personal care",
        "2.99",
        "1.29",
        12,
        0.4,
        season_amplitude=0.3,
        peak=30,
    ),
    _p(
        "PCR-002",
        "Paper Tissues 10-pack",
        "personal care",
        "0.99",
        "0.45",
        24,
        0.6,
        season_amplitude=0.35,
        peak=30,
    ),
    _p(
        "PCR-003",
        "Lip Balm",
        "personal care",
        "2.79",
        "1.19",
        12,
        0.35,
        season_amplitude=0.45,
        peak=15,
    ),
    _p("PCR-004", "Travel Deodorant 50 ml", "personal care", "2.49", "1.19", 12, 0.3, weather=0.3),
    _p("PCR-005", "Assorted Plasters 20 pcs", "personal care", "2.49", "1.05", 12, 0.3),
    _p(
        "PCR-006",
        "Sunscreen SPF 30 50 ml",
        "personal care",
        "6.99",
        "3.40",
        6,
        0.25,
        season_amplitude=0.9,
        peak=190,
        weather=1.0,
    ),
    _p("PCR-007", "Travel Toothbrush", "personal care", "2.29", "0.95", 12, 0.2),
    _p("PHN-001", "USB-C Cable 1 m", "phone accessories", "9.99", "4.20", 5, 0.25, trend=0.3),
    _p("PHN-002", "Lightning Cable 1 m", "phone accessories", "11.99", "5.20", 5, 0.18, trend=-0.5),
    _p(
        "PHN-003",
        "Power Bank 5000 mAh",
        "phone accessories",
        "19.99",
        "9.90",
        4,
        0.12,
        season_amplitude=0.2,
        peak=200,
    ),
    _p("PHN-004", "USB Car Charger", "phone accessories", "12.99", "5.40", 4, 0.08),
    _p("PHN-005", "Wired Earphones", "phone accessories", "8.99", "3.90", 6, 0.12, trend=-0.35),
    _p("PHN-006", "Screen Cleaning Wipes", "phone accessories", "2.99", "1.25", 10, 0.2),
    _p(
        "HSH-001",
        "AA Batteries 4-pack",
        "household",
        "4.99",
        "2.35",
        10,
        0.25,
        season_amplitude=0.2,
        peak=355,
    ),
    _p("HSH-002", "AAA Batteries 4-pack", "household", "4.99", "2.35", 10, 0.18),
    _p("HSH-003", "Pocket Lighter", "household", "1.49", "0.65", 25, 0.35),
    _p(
        "HSH-004",
        "Compact Umbrella",
        "household",
        "9.99",
        "4.60",
        4,
        0.1,
        season_amplitude=0.5,
        peak=300,
        weather=-1.5,
    ),
    _p("HSH-005", "Reusable Shopping Bag", "household", "1.99", "0.85", 10, 0.15),
    _p(
        "HSH-006",
        "Tealight Candles 10-pack",
        "household",
        "2.49",
        "1.05",
        10,
        0.15,
        season_amplitude=0.6,
        peak=345,
    ),
)

#: How well each category sells at each location type (1.0 = average), in CATEGORIES order.
CATEGORY_AFFINITY: dict[LocationType, tuple[float, ...]] = {
    LocationType.CONVENIENCE: (1.0, 1.0, 1.0, 0.6, 0.5, 0.8),
    LocationType.SUPERMARKET: (1.0, 0.9, 1.0, 0.7, 0.4, 0.9),
    LocationType.PHARMACY: (0.5, 0.6, 0.6, 1.8, 0.3, 0.5),
    LocationType.CAFE: (1.0, 0.8, 1.3, 0.3, 0.3, 0.2),
    LocationType.GAS_STATION: (1.1, 1.3, 0.9, 0.4, 1.3, 0.7),
    LocationType.KIOSK: (1.1, 1.2, 1.1, 0.5, 0.6, 0.9),
    LocationType.OFFICE: (1.2, 1.1, 1.1, 0.5, 0.7, 0.3),
    LocationType.GYM: (1.1, 1.7, 0.4, 1.0, 0.4, 0.2),
}


@dataclass(frozen=True)
class City:
    name: str
    region: str
    latitude: float
    longitude: float
    postal_prefixes: tuple[str, ...]
    area_code: str
    weight: float
    reps: tuple[str, ...]
    manager: str
    dealer: str


CITIES: tuple[City, ...] = (
    City(
        "Berlin",
        "Berlin",
        52.5200,
        13.4050,
        ("101", "104", "107", "109", "120", "130"),
        "30",
        0.28,
        ("rep.anna", "rep.ben"),
        "mgr.olivia",
        "Spree Frischdienst GmbH",
    ),
    City(
        "Hamburg",
        "Hamburg",
        53.5511,
        9.9937,
        ("200", "201", "205", "221", "227"),
        "40",
        0.20,
        ("rep.carla",),
        "mgr.olivia",
        "Hanse Kiosk-Logistik KG",
    ),
    City(
        "München",
        "Bayern",
        48.1371,
        11.5754,
        ("803", "804", "806", "809", "816"),
        "89",
        0.18,
        ("rep.david", "rep.elif"),
        "mgr.paul",
        "Isartal Großhandel GmbH",
    ),
    City(
        "Köln",
        "Nordrhein-Westfalen",
        50.9375,
        6.9603,
        ("506", "507", "508", "509"),
        "221",
        0.13,
        ("rep.felix",),
        "mgr.paul",
        "Rheinland Service & Vertrieb GmbH",
    ),
    City(
        "Frankfurt am Main",
        "Hessen",
        50.1109,
        8.6821,
        ("603", "604", "605", "653"),
        "69",
        0.12,
        ("rep.greta",),
        "mgr.paul",
        "Main-Depot Handels GmbH",
    ),
    City(
        "Leipzig",
        "Sachsen",
        51.3397,
        12.3731,
        ("041", "042", "043"),
        "341",
        0.09,
        ("rep.hakan",),
        "mgr.olivia",
        "Mitteldeutsche Regalservice GmbH",
    ),
)

STREETS: tuple[str, ...] = (
    "Hauptstraße",
    "Bahnhofstraße",
    "Schillerstraße",
    "Goethestraße",
    "Lindenallee",
    "Friedrichstraße",
    "Kantstraße",
    "Bergstraße",
    "Gartenstraße",
    "Schulstraße",
    "Parkstraße",
    "Mühlenweg",
    "Am Hafen",
    "Kirchplatz",
    "Rosenstraße",
    "Marktstraße",
    "Ringstraße",
    "Wiesenweg",
    "Lessingstraße",
    "Uhlandstraße",
    "Kastanienallee",
    "Brunnenstraße",
    "Rathausplatz",
    "Königstraße",
    "Lange Straße",
    "Feldstraße",
    "Poststraße",
    "Wilhelmstraße",
    "Eichendorffweg",
    "Am Markt",
)

FIRST_NAMES: tuple[str, ...] = (
    "Anna",
    "Ben",
    "Clara",
    "Deniz",
    "Elena",
    "Finn",
    "Greta",
    "Hannah",
    "Ibrahim",
    "Jonas",
    "Katarzyna",
    "Lukas",
    "Mia",
    "Nils",
    "Olga",
    "Paul",
    "Rania",
    "Sebastian",
    "Tobias",
    "Ulrike",
    "Vanessa",
    "Wojciech",
    "Yusuf",
    "Zoe",
    "Marco",
    "Leonie",
    "Ahmet",
    "Sofia",
)

LAST_NAMES: tuple[str, ...] = (
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Schulz",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Yilmaz",
    "Kaya",
    "Nowak",
    "Kowalski",
    "Nguyen",
    "Rossi",
    "Krause",
    "Lehmann",
    "Hartmann",
    "Brandt",
    "Vogel",
    "Krüger",
    "Demir",
    "Petrović",
)

#: Business name patterns per location type; {last}, {first} and {street} are filled in.
NAME_PATTERNS: dict[LocationType, tuple[str, ...]] = {
    LocationType.CONVENIENCE: ("{last} Nahkauf", "Minimarkt {street}", "Frischeladen {last}"),
    LocationType.SUPERMARKET: ("{last} Frischemarkt", "Markt {last}", "Stadtmarkt {street}"),
    LocationType.PHARMACY: ("{street}-Apotheke", "Apotheke {last}", "Stern-Apotheke {last}"),
    LocationType.CAFE: ("Café {first}", "Kaffeebar {street}", "Rösterei {last}"),
    LocationType.GAS_STATION: ("Tankstelle {street}", "{last} Tankstelle", "Autohof {last}"),
    LocationType.KIOSK: ("Kiosk {last}", "Späti {street}", "Zeitschriften {last}"),
    LocationType.OFFICE: ("{last} & Partner Office", "Coworking {street}", "{last} Software GmbH"),
    LocationType.GYM: ("FitWerk {street}", "Kraftraum {last}", "Studio Puls {last}"),
}

#: Stand size class per type: (typical units/day at an average stand, share of stands).
LOCATION_PROFILES: dict[LocationType, tuple[float, float]] = {
    LocationType.CONVENIENCE: (6.0, 0.20),
    LocationType.SUPERMARKET: (7.0, 0.10),
    LocationType.PHARMACY: (4.0, 0.08),
    LocationType.CAFE: (4.0, 0.12),
    LocationType.GAS_STATION: (6.5, 0.10),
    LocationType.KIOSK: (5.5, 0.18),
    LocationType.OFFICE: (7.0, 0.12),
    LocationType.GYM: (5.0, 0.10),
}

#: Relative sales per weekday, Monday first (0 = closed, as German shops on Sundays).
WEEKDAY_PROFILES: dict[LocationType, tuple[float, ...]] = {
    LocationType.CONVENIENCE: (0.9, 0.9, 0.95, 1.0, 1.25, 1.4, 0.5),
    LocationType.SUPERMARKET: (0.95, 0.9, 0.95, 1.0, 1.3, 1.5, 0.0),
    LocationType.PHARMACY: (1.1, 1.05, 1.0, 1.05, 1.1, 0.7, 0.0),
    LocationType.CAFE: (0.8, 0.85, 0.9, 0.95, 1.1, 1.3, 1.25),
    LocationType.GAS_STATION: (0.95, 0.9, 0.9, 0.95, 1.15, 1.15, 1.0),
    LocationType.KIOSK: (0.85, 0.85, 0.9, 0.95, 1.2, 1.35, 0.9),
    LocationType.OFFICE: (1.1, 1.15, 1.15, 1.1, 0.95, 0.1, 0.03),
    LocationType.GYM: (1.25, 1.15, 1.15, 1.1, 0.85, 0.8, 0.7),
}

#: Relative sales per local hour from 08:00 to 20:00 (sales stop at 21:00).
HOURLY_PROFILES: dict[LocationType, tuple[float, ...]] = {
    LocationType.CONVENIENCE: (3, 4, 5, 6, 6, 5, 5, 6, 7, 8, 7, 5, 3),
    LocationType.SUPERMARKET: (3, 5, 6, 6, 6, 5, 5, 6, 7, 8, 7, 5, 3),
    LocationType.PHARMACY: (4, 6, 7, 7, 6, 5, 5, 6, 6, 5, 3, 1, 0.5),
    LocationType.CAFE: (6, 8, 8, 7, 8, 7, 6, 5, 4, 3, 2, 1, 0.5),
    LocationType.GAS_STATION: (6, 6, 5, 5, 6, 6, 6, 7, 7, 7, 6, 5, 4),
    LocationType.KIOSK: (3, 4, 4, 5, 5, 5, 5, 6, 7, 7, 7, 6, 5),
    LocationType.OFFICE: (3, 6, 5, 8, 9, 6, 5, 6, 4, 2, 1, 0.5, 0.2),
    LocationType.GYM: (5, 3, 2, 2, 3, 3, 3, 4, 6, 8, 9, 8, 5),
}

#: Payment mix per type at the start of the period: (cash, qr, card). QR grows over time.
PAYMENT_MIX: dict[LocationType, tuple[float, float, float]] = {
    LocationType.CONVENIENCE: (0.45, 0.20, 0.35),
    LocationType.SUPERMARKET: (0.35, 0.15, 0.50),
    LocationType.PHARMACY: (0.35, 0.15, 0.50),
    LocationType.CAFE: (0.35, 0.30, 0.35),
    LocationType.GAS_STATION: (0.30, 0.15, 0.55),
    LocationType.KIOSK: (0.60, 0.20, 0.20),
    LocationType.OFFICE: (0.15, 0.35, 0.50),
    LocationType.GYM: (0.15, 0.40, 0.45),
}

REDEEM_NOTES: tuple[str, ...] = (
    "Redeemed for a shop voucher",
    "Redeemed for a display refresh kit",
    "Redeemed as credit on the next payout",
)
REJECT_REASONS: tuple[str, ...] = (
    "Duplicate of an earlier request",
    "Quantities too high for the season",
    "Stand closed for renovation this week",
)
CANCEL_REASONS: tuple[str, ...] = (
    "Partner closed on the delivery day",
    "Dealer could not deliver this week",
)


def fake_iban(bank_code: int, account: int) -> str:
    """A well-formed German IBAN (valid check digits) for a made-up bank account."""
    bban = f"{bank_code:08d}{account:010d}"
    # "DE" is 13 14; check digits from mod 97 of BBAN + country + "00".
    check = 98 - int(bban + "131400") % 97
    raw = f"DE{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "ć": "c"})


def slug(text: str, sep: str = "-") -> str:
    """Lowercase ASCII letters and digits joined by ``sep`` (for e-mail addresses, users)."""
    ascii_text = text.lower().translate(_TRANSLIT)
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in ascii_text).split()
    return sep.join(words)


#: Who a demo session works as by default: the first rep of the first city, who has stands,
#: so the demo opens on a real day's work rather than on an empty list.
DEMO_USER = CITIES[0].reps[0]
