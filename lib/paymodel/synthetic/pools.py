"""Names, streets and cities per market, built in (no fake-data library at run time).

Names and addresses are drawn from these pools with vectorised indexing; the pools
are small on purpose: the data is synthetic and must never look like a real person's.

Example:
    >>> sorted(POOLS) == sorted(c.code for c in COUNTRIES)
    True
    >>> all(len(p.first) >= 8 and len(p.last) >= 8 for p in POOLS.values())
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from paymodel.synthetic.config import COUNTRIES

__all__ = ["POOLS", "Pool"]


@dataclass(frozen=True)
class Pool:
    """What a market's customers are called and where they live."""

    first: tuple[str, ...]
    last: tuple[str, ...]
    streets: tuple[str, ...]
    cities: tuple[tuple[str, str | None], ...]
    """(city, state or None)."""
    phone_prefix: str
    postal_digits: int
    email_domains: tuple[str, ...] = ("example.com", "example.org", "example.net")


_EN_FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
             "David", "Elizabeth", "William", "Susan", "Richard", "Jessica", "Joseph", "Sarah")  # fmt: skip
_EN_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
            "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White")  # fmt: skip
_EN_STREETS = ("Main Street", "Oak Avenue", "Maple Drive", "Cedar Lane", "Park Road",
               "Elm Street", "Hill Road", "Lake View", "River Street", "Church Lane")  # fmt: skip

POOLS: dict[str, Pool] = {
    "US": Pool(_EN_FIRST, _EN_LAST, _EN_STREETS,
               (("Austin", "TX"), ("Denver", "CO"), ("Seattle", "WA"), ("Boston", "MA"),
                ("Chicago", "IL"), ("Atlanta", "GA"), ("Portland", "OR"), ("Brooklyn", "NY")),
               "+1 555", 5),
    "GB": Pool(("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Emily", "Noah", "Grace"),
               ("Smith", "Jones", "Taylor", "Evans", "Walker", "Wright", "Hughes", "Roberts", "Green", "Hall"),
               ("High Street", "Station Road", "Victoria Road", "Mill Lane", "Kings Road", "Queens Road"),
               (("London", None), ("Leeds", None), ("Bristol", None), ("Manchester", None), ("York", None)),
               "+44 7700", 0),
    "DE": Pool(("Lukas", "Anna", "Leon", "Marie", "Finn", "Sophie", "Jonas", "Lea", "Paul", "Hannah"),
               ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Koch"),
               ("Hauptstraße", "Bahnhofstraße", "Gartenstraße", "Schulstraße", "Dorfstraße", "Lindenweg"),
               (("Berlin", None), ("Hamburg", None), ("München", None), ("Köln", None), ("Leipzig", None)),
               "+49 30", 5),
    "FR": Pool(("Gabriel", "Louise", "Raphaël", "Jade", "Arthur", "Emma", "Louis", "Chloé", "Jules", "Alice"),
               ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau"),
               ("rue de la Paix", "avenue Victor Hugo", "rue Pasteur", "boulevard Voltaire", "rue du Moulin"),
               (("Paris", None), ("Lyon", None), ("Marseille", None), ("Toulouse", None), ("Nantes", None)),
               "+33 6", 5),
    "JP": Pool(("Haruto", "Yui", "Sota", "Hina", "Yuto", "Mio", "Riku", "Sakura", "Ren", "Aoi"),
               ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi", "Kato"),
               ("Chuo-dori", "Sakura-dori", "Meiji-dori", "Omotesando", "Aoyama-dori"),
               (("Tokyo", "Tokyo"), ("Osaka", "Osaka"), ("Yokohama", "Kanagawa"), ("Kyoto", "Kyoto"), ("Sapporo", "Hokkaido")),
               "+81 90", 7),
    "CA": Pool(_EN_FIRST, (*_EN_LAST, "Tremblay", "Gagnon", "Roy", "Côté"), _EN_STREETS,
               (("Toronto", "ON"), ("Montréal", "QC"), ("Vancouver", "BC"), ("Calgary", "AB"), ("Ottawa", "ON")),
               "+1 555", 0),
    "AU": Pool(_EN_FIRST, _EN_LAST, _EN_STREETS,
               (("Sydney", "NSW"), ("Melbourne", "VIC"), ("Brisbane", "QLD"), ("Perth", "WA"), ("Adelaide", "SA")),
               "+61 4", 4),
    "BR": Pool(("Miguel", "Helena", "Arthur", "Alice", "Heitor", "Laura", "Davi", "Manuela", "Bernardo", "Valentina"),
               ("Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes"),
               ("Rua das Flores", "Avenida Paulista", "Rua XV de Novembro", "Rua Sete de Setembro"),
               (("São Paulo", "SP"), ("Rio de Janeiro", "RJ"), ("Belo Horizonte", "MG"), ("Curitiba", "PR")),
               "+55 11", 8),
    "IN": Pool(("Aarav", "Aadhya", "Vivaan", "Ananya", "Aditya", "Diya", "Arjun", "Saanvi", "Reyansh", "Pari"),
               ("Sharma", "Verma", "Gupta", "Singh", "Kumar", "Patel", "Reddy", "Iyer", "Nair", "Das"),
               ("MG Road", "Park Street", "Brigade Road", "Linking Road", "Anna Salai"),
               (("Bengaluru", "KA"), ("Mumbai", "MH"), ("Delhi", "DL"), ("Chennai", "TN"), ("Pune", "MH")),
               "+91 98", 6),
    "MX": Pool(("Santiago", "Sofía", "Mateo", "Valentina", "Sebastián", "Regina", "Leonardo", "Camila", "Diego", "Ximena"),
               ("Hernández", "García", "Martínez", "López", "González", "Pérez", "Rodríguez", "Sánchez", "Ramírez", "Cruz"),
               ("Avenida Reforma", "Calle Juárez", "Avenida Insurgentes", "Calle Hidalgo", "Calle Morelos"),
               (("Ciudad de México", "CDMX"), ("Guadalajara", "JAL"), ("Monterrey", "NL"), ("Puebla", "PUE")),
               "+52 55", 5),
    "SE": Pool(("William", "Alice", "Liam", "Maja", "Noah", "Elsa", "Hugo", "Astrid", "Oscar", "Wilma"),
               ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson", "Svensson", "Gustafsson"),
               ("Storgatan", "Drottninggatan", "Kungsgatan", "Skolgatan", "Parkvägen"),
               (("Stockholm", None), ("Göteborg", None), ("Malmö", None), ("Uppsala", None)),
               "+46 70", 5),
    "CH": Pool(("Noah", "Mia", "Liam", "Emma", "Matteo", "Sofia", "Luca", "Lina", "Elias", "Lara"),
               ("Müller", "Meier", "Schmid", "Keller", "Weber", "Huber", "Schneider", "Meyer", "Steiner", "Fischer"),
               ("Bahnhofstrasse", "Hauptstrasse", "Dorfstrasse", "Seestrasse", "Kirchweg"),
               (("Zürich", "ZH"), ("Genève", "GE"), ("Basel", "BS"), ("Bern", "BE"), ("Lausanne", "VD")),
               "+41 79", 4),
    "KW": Pool(("Mohammed", "Fatima", "Abdullah", "Maryam", "Ahmad", "Noura", "Yousef", "Sara", "Khaled", "Aisha"),
               ("Al-Sabah", "Al-Mutairi", "Al-Ajmi", "Al-Azmi", "Al-Enezi", "Al-Rashidi", "Al-Kandari", "Al-Shammari"),
               ("Gulf Road", "Fahad Al-Salem Street", "Arabian Gulf Street", "Salem Al-Mubarak Street"),
               (("Kuwait City", None), ("Hawalli", None), ("Salmiya", None), ("Jahra", None)),
               "+965 5", 5),
}
"""Built-in pools per country code."""

assert set(POOLS) == {c.code for c in COUNTRIES}
