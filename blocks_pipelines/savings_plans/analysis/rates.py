"""Typical Savings Plans discounts by term and payment option, and how they move the SP rate ratio.

The usage mart reports the ratio (SP rate / on-demand rate) the tenant actually gets, which reflects its
instance mix. When the caller asks for another term or payment option we keep that mix and only scale the ratio
by how much cheaper that offering typically is. Figures are Compute Savings Plans averages (REFERENCE.md,
section 2: about 27% off for 1 year no upfront; payment option moves the discount ~3 points, a 3-year term
~12 points); exact rates come from savingsplans DescribeSavingsPlansOfferingRates at purchase time.
"""

from __future__ import annotations

PAYMENT_OPTIONS = ("no_upfront", "partial_upfront", "all_upfront")
TERMS = (1, 3)

# (term_years, payment_option) -> typical discount vs on-demand
TYPICAL_DISCOUNT: dict[tuple[int, str], float] = {
    (1, "no_upfront"): 0.27,
    (1, "partial_upfront"): 0.30,
    (1, "all_upfront"): 0.33,
    (3, "no_upfront"): 0.39,
    (3, "partial_upfront"): 0.42,
    (3, "all_upfront"): 0.45,
}

# The observed ratio is assumed to come from the plan type customers hold most: 1 year, no upfront.
OBSERVED_BASIS = (1, "no_upfront")


def validate_offering(term_years: int, payment_option: str) -> None:
    if term_years not in TERMS:
        raise ValueError(f"term_years={term_years!r} is not offered; use 1 or 3")
    if payment_option not in PAYMENT_OPTIONS:
        raise ValueError(f"payment_option={payment_option!r} is unknown; use one of {', '.join(PAYMENT_OPTIONS)}")


def ratio_for_offering(observed_ratio: float, term_years: int, payment_option: str) -> float:
    """SP rate / on-demand rate for the requested offering, keeping the tenant's observed mix."""
    validate_offering(term_years, payment_option)
    basis = 1.0 - TYPICAL_DISCOUNT[OBSERVED_BASIS]
    wanted = 1.0 - TYPICAL_DISCOUNT[(term_years, payment_option)]
    return min(1.0, observed_ratio * wanted / basis)
