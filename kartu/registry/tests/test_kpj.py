"""KPJ membership numbers and kartu's Damm check digit."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from stdnum import luhn

from kartu.registry.kpj import (
    InvalidKpj,
    compact,
    has_valid_check_digit,
    is_valid,
    issue_number,
    mask,
    validate,
)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("12345678901", "12345678901"),
        ("00012345678", "00012345678"),  # leading zeros are kept: a KPJ is a string
        ("123 4567 8901", "12345678901"),
        ("123.456.789.01", "12345678901"),
        ("1234-5678-901", "12345678901"),
        (" 12345678901\t", "12345678901"),
    ],
)
def test_valid_kpj(written: str, expected: str) -> None:
    assert compact(written) == expected
    assert validate(written) == expected
    assert is_valid(written)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "format"),
        ("1234567890A", "format"),
        ("KPJ12345678", "format"),
        ("+1234567890", "format"),
        ("1234567890", "length"),
        ("123456789012", "length"),
        ("0001234567890", "length"),  # 13 digits: BPJS Kesehatan card number
        ("3174011708450001", "length"),  # 16 digits: a NIK
    ],
)
def test_invalid_kpj(value: str, code: str) -> None:
    with pytest.raises(InvalidKpj) as excinfo:
        validate(value)
    assert excinfo.value.code == code
    assert not is_valid(value)


def test_helpful_messages_for_common_mix_ups() -> None:
    with pytest.raises(InvalidKpj, match="BPJS Kesehatan"):
        validate("0001234567890")
    with pytest.raises(InvalidKpj, match="NIK"):
        validate("3174011708450001")
    with pytest.raises(ValueError, match="11 digits"):
        validate("1234567890")


def test_imported_numbers_are_not_judged_by_the_check_digit() -> None:
    # An imported number without a valid Damm digit is still a valid KPJ.
    assert not has_valid_check_digit("12345678901")
    assert validate("12345678901") == "12345678901"


def test_issue_number_known_answer() -> None:
    # The textbook Damm example: 572 -> check digit 4. Leading zeros do not change it.
    assert issue_number("0000000572") == "00000005724"
    assert has_valid_check_digit("00000005724")
    assert not has_valid_check_digit("00000005723")


@pytest.mark.parametrize("body", ["", "123456789", "12345678901", "12345A7890", "12345 7890"])
def test_issue_number_needs_ten_digits(body: str) -> None:
    with pytest.raises(ValueError, match="10 digits"):
        issue_number(body)


def test_has_valid_check_digit_needs_eleven_digits() -> None:
    number = issue_number("1234567890")
    assert has_valid_check_digit(number)
    assert has_valid_check_digit(f"{number[:4]} {number[4:]}")
    assert not has_valid_check_digit(number[:-1])
    assert not has_valid_check_digit("0" + number)
    assert not has_valid_check_digit(number[:-1] + "X")


def test_mask() -> None:
    assert mask("12345678901") == "*******8901"


def undetected_errors(
    issue: Callable[[str], str], is_ok: Callable[[str], bool], body: str
) -> list[str]:
    """Every single-digit substitution and adjacent transposition that the check misses."""
    number = issue(body)
    assert is_ok(number)
    missed = []
    for i, digit in enumerate(number):
        for other in "0123456789":
            if other != digit:
                mutated = number[:i] + other + number[i + 1 :]
                if is_ok(mutated):
                    missed.append(mutated)
    for i in range(len(number) - 1):
        if number[i] != number[i + 1]:
            mutated = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
            if is_ok(mutated):
                missed.append(mutated)
    return missed


def _sample_bodies() -> list[str]:
    rng = random.Random(20260115)
    bodies = ["0000000000", "9999999999", "0123456789", "9876543210", "0909090909", "1212121212"]
    bodies += [f"{rng.randrange(10**10):010d}" for _ in range(300)]
    return bodies


def test_damm_catches_every_single_digit_error_and_adjacent_swap() -> None:
    for body in _sample_bodies():
        assert undetected_errors(issue_number, has_valid_check_digit, body) == [], body


def test_the_exhaustive_check_can_fail() -> None:
    # Luhn misses the 09 <-> 90 swap, so the same checker finds errors for it.
    def luhn_issue(body: str) -> str:
        return body + luhn.calc_check_digit(body)

    missed = undetected_errors(luhn_issue, luhn.is_valid, "0909090909")
    assert missed
