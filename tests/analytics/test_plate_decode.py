"""Constrained CTC decoding of plates, on CTC matrices built to show each error type of
issue 19: O/0 and I/1, doubled or inserted characters, a dropped or added leading one,
and a reading that fits no template keeping a lower confidence."""

from __future__ import annotations

import numpy as np
import pytest

from trafficprn.analytics.ocr import PLATE_ALPHABET, TextRead
from trafficprn.analytics.plate_decode import N_COLS, DecodeParams, compress_blanks, decode_plate
from trafficprn.analytics.plates import PlateReader
from trafficprn.errors import InputError
from trafficprn.plate_syntax import parse_plate_format

Step = str | dict[str, float]


def ctc(steps: list[Step], floor: float = 1e-4) -> np.ndarray:
    """A (T, 37) plate CTC matrix: "" a blank step, "A" a step sure of A (0.95), or
    {"O": 0.55, "0": 0.4} a step split between characters (the rest is blank)."""
    rows = []
    for step in steps:
        row = np.full(N_COLS, floor)
        probs = {step: 0.95} if isinstance(step, str) and step else step or {}
        assert isinstance(probs, dict)
        for ch, p in probs.items():
            row[1 + PLATE_ALPHABET.index(ch)] = p
        row[0] = max(floor, 1.0 - sum(probs.values()))
        rows.append(row / row.sum())
    return np.array(rows)


def spaced(*steps: Step) -> list[Step]:
    """Characters separated by blanks, as the recogniser emits them."""
    out: list[Step] = [""]
    for s in steps:
        out += [s, ""]
    return out


def decode(steps: list[Step], spec: str) -> str | None:
    syntax = parse_plate_format(spec)
    assert syntax is not None
    got = decode_plate(ctc(steps), syntax)
    return None if got is None else got.text


def greedy(steps: list[Step]) -> str:
    m = ctc(steps).argmax(axis=1)
    return "".join(PLATE_ALPHABET[j - 1] for i, j in enumerate(m) if j and (i == 0 or m[i - 1] != j))


# ---------------------------------------------------------------- O/0, I/1 (the largest group)
def test_o_read_for_zero_where_the_us_syntax_says_digit() -> None:
    """0SG719: the model leans to O (0.55 vs 0.40); US serials rarely use O, DLL-DDD fits."""
    steps = spaced({"O": 0.55, "0": 0.40}, "S", "G", "7", "1", "9")
    assert greedy(steps) == "OSG719"
    assert decode(steps, "us") == "0SG719"


def test_o_and_i_without_a_known_format_follow_the_glyph_prior() -> None:
    """UH1F0F read as UHIFOF: no US template fits, the free reading's prior still picks 1, 0."""
    steps = spaced("U", "H", {"I": 0.5, "1": 0.45}, "F", {"O": 0.5, "0": 0.4}, "F")
    assert greedy(steps) == "UHIFOF"
    assert decode(steps, "us") == "UH1F0F"


def test_letter_o_kept_where_the_region_uses_it() -> None:
    """Brazil issues O in its letter series: AYO9034 stays, with `br` and with `auto`."""
    steps = spaced("A", "Y", {"O": 0.55, "0": 0.40}, "9", "0", "3", "4")
    assert decode(steps, "br") == "AYO9034"
    assert decode(steps, "auto") == "AYO9034"


@pytest.mark.parametrize(
    ("steps", "spec", "expected"),
    [
        (spaced("A", "B", "C", {"O": 0.55, "0": 0.4}, "2", "3", "4"), "LLL-DDDD", "ABC0234"),  # O at a digit slot
        (spaced({"8": 0.55, "B": 0.4}, "X", "Y", "1", "2", "3"), "LLL-DDD", "BXY123"),  # B/8
        (spaced("A", "B", "C", "1", {"S": 0.55, "5": 0.4}, "3", "4"), "LLL-DDDD", "ABC1534"),  # S/5
        (spaced({"2": 0.55, "Z": 0.4}, "A", "1", "2", "3", "4"), "LL-DDDD", "ZA1234"),  # Z/2
        (spaced("A", "B", {"G": 0.55, "6": 0.4}, "1", "2", "3", "4"), "LL-DDDDD", "AB61234"),  # G/6
    ],
)
def test_glyph_confusions_resolved_by_the_slot_class(steps: list[Step], spec: str, expected: str) -> None:
    assert greedy(steps) != expected
    assert decode(steps, spec) == expected


# ---------------------------------------------------------------- doubled, inserted, dropped, added
def test_doubled_character_loses_against_a_reading_that_fits() -> None:
    """UF2V5S read UF22V5S: the second 2 is weaker than the first and than blank."""
    steps = ["", "U", "", "F", "", "2", "", {"2": 0.55}, "", "V", "", "5", "", "S", ""]
    assert greedy(steps) == "UF22V5S"
    assert decode(steps, "LL-D-L-D-L") == "UF2V5S"


def test_inserted_character_dropped_to_fit() -> None:
    """YG8E4F read YG8WE4F: a W squeezed in between two characters."""
    steps = spaced("Y", "G", "8", {"W": 0.6}, "E", "4", "F")
    assert greedy(steps) == "YG8WE4F"
    assert decode(steps, "LL-D-L-D-L") == "YG8E4F"


def test_dropped_leading_character_read_back() -> None:
    """A faint first character (0.35 against blank) the argmax leaves out, which LLL-DDDD needs."""
    steps = ["", {"K": 0.35}, "", "L", "", "M", "", "4", "", "8", "", "2", "", "1", ""]
    assert greedy(steps) == "LM4821"
    assert decode(steps, "LLL-DDDD") == "KLM4821"


def test_added_leading_character_left_out() -> None:
    """A border mark read as a weak 1 before a DLL-DDDD plate's own digit."""
    steps = spaced({"1": 0.55}, "5", "A", "U", "5", "3", "4", "1")
    assert greedy(steps) == "15AU5341"
    assert decode(steps, "cz") == "5AU5341"


def test_repeated_letter_needs_a_blank_between() -> None:
    """Two equal characters need a blank between them (the CTC rule): A, blank, A reads AA;
    one run of A held over two steps is one A, and the decoder does not split it."""
    assert decode(spaced("A", "A", "1", "2", "3", "4"), "LL-DDDD") == "AA1234"
    held = ["", "A", "A", "", "1", "", "2", "", "3", "", "4", ""]
    assert greedy(held) == "A1234"
    assert decode(held, "LL-DDDD") != "AA1234"


# ---------------------------------------------------------------- confidence and edge cases
def test_reading_that_fits_no_format_keeps_a_lower_confidence() -> None:
    steps = spaced("H", "E", "L", "L", "O", "W", "O", "R", "L", "D")  # ten letters: no BR template
    fits = decode_plate(ctc(spaced("A", "B", "C", "1", "2", "3", "4")), parse_plate_format("br"))  # type: ignore[arg-type]
    unfit = decode_plate(ctc(steps), parse_plate_format("br"))  # type: ignore[arg-type]
    assert fits is not None and unfit is not None
    assert fits.template == "LLLDDDD" and unfit.template is None
    assert unfit.confidence <= DecodeParams().unfit_factor * max(unfit.char_probs) + 1e-9
    assert unfit.confidence < fits.confidence


def test_reader_uses_the_ctc_matrix_and_lowers_unfit_reads() -> None:
    reader = PlateReader("br", backend=_NoBackend())
    matrix = ctc(spaced("A", "B", "C", {"O": 0.6, "0": 0.35}, "2", "3", "4"))
    fitted = reader.read_read(TextRead("ABCO234", 0.9, ctc=matrix))
    assert fitted is not None and fitted.text == "ABC0234"
    text_only = reader.read_read(TextRead("XY", 0.9, (0.9, 0.9)))
    assert text_only is None


def test_blank_runs_are_merged_without_changing_the_reading() -> None:
    steps = ["", "", "", "A", "", "", "B", "", "", "", "C", "1", "", "2", "", "", "3", ""]
    matrix = ctc(steps, floor=1e-5)
    assert len(compress_blanks(matrix)) < len(matrix)
    assert decode(steps, "LLL-DDD") == "ABC123"


@pytest.mark.parametrize("bad", [np.zeros((5, 10)), np.zeros(37)])
def test_bad_matrix_shape_is_an_input_error(bad: np.ndarray) -> None:
    with pytest.raises(InputError, match="CTC matrix"):
        decode_plate(bad, parse_plate_format("us"))  # type: ignore[arg-type]


def test_empty_matrix_gives_no_plate() -> None:
    assert decode_plate(np.zeros((0, N_COLS)), parse_plate_format("us")) is None  # type: ignore[arg-type]


class _NoBackend:
    name = "none"

    def detect(self, image_bgr: np.ndarray) -> list[object]:
        return []

    def recognise(self, crop_bgr: np.ndarray, alphabet: str | None = None) -> TextRead:
        return TextRead("", 0.0)
