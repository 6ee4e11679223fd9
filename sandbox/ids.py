"""Identifier generation for the sandbox: SIREN, SIRET, French VAT numbers, vendor ids.

Generation only; the tests check every value with python-stdnum.
"""
from __future__ import annotations

import random
import string

_ALNUM = string.ascii_letters + string.digits


def luhn_check_digit(digits: str) -> str:
    """The digit to append to `digits` so the whole number passes the Luhn check."""
    total = 0
    # Walking from the right, with the check digit still to come: double every first, third, ... digit.
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def new_siren(rng: random.Random, taken: set[str]) -> str:
    """A fresh 9-digit SIREN with a valid Luhn key (never La Poste's 356000000, never starting with 0)."""
    while True:
        body = str(rng.randint(10_000_000, 99_999_999))
        siren = body + luhn_check_digit(body)
        if siren not in taken and not siren.startswith("356000000"):
            taken.add(siren)
            return siren


def siret_for(siren: str, establishment: int = 1) -> str:
    """SIRET = SIREN + NIC (4-digit establishment number + Luhn key over all 14 digits)."""
    nic4 = f"{establishment:04d}"
    return siren + nic4 + luhn_check_digit(siren + nic4)


def fr_vat(siren: str) -> str:
    """French intra-EU VAT number: FR + 2-digit key + SIREN, key = (12 + 3 * (SIREN mod 97)) mod 97."""
    key = (12 + 3 * (int(siren) % 97)) % 97
    return f"FR{key:02d}{siren}"


def guid(rng: random.Random) -> str:
    """A Guid-like string (Koban ids), deterministic from rng."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"


def stripe_id(rng: random.Random, prefix: str, length: int = 14) -> str:
    """A Stripe-style id such as cus_Nffrfeu2Xk9a3b."""
    return prefix + "_" + "".join(rng.choice(_ALNUM) for _ in range(length))
