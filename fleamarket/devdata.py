"""Deterministic demo data shared by both services' seed commands.

Sellers in UserService and their ads in AdService must agree on ids without a
cross-database key: both derive them from the same seeded generator.
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass
from pathlib import Path

from fleamarket.settings import var_dir

SEED = 20261125
PEOPLE = 50
DEMO_USER = "seller01"
ADS = 500

CITIES = {
    "Berlin": (52.5200, 13.4050),
    "Hamburg": (53.5511, 9.9937),
    "Munich": (48.1351, 11.5820),
    "Cologne": (50.9375, 6.9603),
    "Vienna": (48.2082, 16.3738),
}
FIRST = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ida", "Jonas"]
LAST = ["Becker", "Fischer", "Hoffmann", "Klein", "Meyer", "Neumann", "Schulz", "Wagner"]
THINGS = [
    ("Bicycle", "sell"),
    ("Drill", "rent"),
    ("Tent", "rent"),
    ("Sofa", "sell"),
    ("Board games", "swap"),
    ("Camera", "sell"),
    ("Ladder", "rent"),
    ("Vinyl records", "swap"),
    ("Desk lamp", "sell"),
    ("Kayak", "rent"),
    ("Books", "swap"),
    ("Stroller", "sell"),
]
ADJECTIVES = ["Vintage", "Almost new", "Sturdy", "Compact", "Classic", "Well loved"]


@dataclass(frozen=True)
class Person:
    username: str
    display_name: str
    city: str
    rating: str
    member_since_days_ago: int


@dataclass(frozen=True)
class AdData:
    seller_index: int  # 1-based position in people(); the seller's user id after seeding
    title: str
    description: str
    price: str
    kind: str
    latitude: float
    longitude: float
    expires_in_days: int


def people() -> list[Person]:
    rng = random.Random(SEED)  # noqa: S311 - demo data, not a secret
    cities = list(CITIES)
    result = []
    for i in range(1, PEOPLE + 1):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        result.append(
            Person(
                username=f"seller{i:02d}",
                display_name=name,
                city=cities[i % len(cities)],
                rating=f"{rng.uniform(2.5, 5.0):.2f}",
                member_since_days_ago=rng.randint(10, 2000),
            )
        )
    return result


def ads() -> list[AdData]:
    rng = random.Random(SEED + 1)  # noqa: S311 - demo data, not a secret
    cities = list(CITIES.values())
    result = []
    for i in range(ADS):
        lat0, lon0 = cities[i % len(cities)]
        thing, kind = rng.choice(THINGS)
        result.append(
            AdData(
                seller_index=rng.randint(1, PEOPLE),
                title=f"{rng.choice(ADJECTIVES)} {thing.lower()}",
                description=f"{thing} in good condition, pick-up only.",
                price=f"{rng.uniform(3, 400):.2f}",
                kind=kind,
                # Within roughly 30 km of the city centre.
                latitude=round(lat0 + rng.uniform(-0.25, 0.25), 6),
                longitude=round(lon0 + rng.uniform(-0.35, 0.35), 6),
                expires_in_days=rng.randint(-5, 60),
            )
        )
    return result


def dev_password(name: str) -> str:
    """A generated development password kept in var/ (mode 0600), never in the repo."""
    path = Path(var_dir()) / f"{name}.password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(12))
    return path.read_text().strip()
