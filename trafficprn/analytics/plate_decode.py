"""Plate decoding under a syntax: the most probable reading of the recogniser's CTC
probabilities that fits a plate template, instead of the per-timestep argmax string.

`decode_plate(ctc, syntax)` runs, for every template, a Viterbi over (timestep x template
slot x character): each slot's character must be of the slot's class (letter, digit,
either, a literal), blanks may separate characters, a character may hold over several
timesteps, and two equal neighbours need a blank between them (the CTC rule). So

- at a letter slot the best letter is read even where a digit peaked (O/0, I/1, B/8,
  S/5, Z/2, G/6), and the other way round;
- a doubled or inserted character costs what the model gave its timesteps over blank
  or over the neighbour, and loses against a reading of the template's length;
- a faint leading or trailing character the argmax dropped (or a spurious one it added)
  is read back in (or left out) when the template's length asks for it.

Glyph confusions: a letter slot may read O, I, B, S, Z, G where the model saw 0, 1, 8, 5,
2, 6 (and the other way round) at `confusion_nats` per character, however little
probability the model gave the look-alike itself. Glyph priors: letters a region's serials mostly leave out (US: O, I, Q) pay a penalty
against the digits they look like, once per character, in that region's templates. Every template competes with a "free" reading
(any character, the argmax's length) that pays `free_penalty_nats` (more where the site
wrote its own templates out); when it wins, no
template fits well enough and the reading's confidence is scaled by `unfit_factor`.
The defaults were tuned on openalpr/benchmarks `seg_and_ocr/usimages` only
(`benchmarks/bench_plates.py --sections tune`), never on an evaluation set.
"""

from __future__ import annotations

import string
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from trafficprn.errors import InputError
from trafficprn.plate_syntax import ANY, DIGIT, LETTER, PlateSyntax

ALPHABET = string.ascii_uppercase + string.digits  # columns 1..36 of a plate CTC matrix
N_COLS = 1 + len(ALPHABET)
NEG = -1e9
MAX_LENGTH_CHANGE = 2  # characters a template may add to or drop from the greedy read
BLANK_RUN_P = 0.995
CONFUSIONS = (("O", "0"), ("I", "1"), ("B", "8"), ("S", "5"), ("Z", "2"), ("G", "6"))  # glyphs drawn alike  # timesteps this surely blank are merged: fewer Viterbi steps, same result


@dataclass(frozen=True)
class DecodeParams:
    """Knobs of the decoder (defaults tuned on the tune set, see the module doc)."""

    rare_letter_nats: float = 1.2  # a template's rare letters (US: O, I, Q), against 0, 1, 0
    free_penalty_nats: float = 1.0
    # the site wrote its templates out: a reading outside them needs far more evidence
    # (a chosen value, not tuned: e^4 ~ 55 times the probability)
    custom_free_penalty_nats: float = 4.0
    unfit_factor: float = 0.6
    # a look-alike may stand in for its partner at this cost (the model often gives the
    # other glyph almost nothing: 0 at 0.93, O at 1e-4)
    confusion_nats: float = 1.5
    length_change_nats: float = 0.0  # per character added to or dropped from the argmax read (tune set: 0 best)


@dataclass(frozen=True)
class PlateDecoding:
    """A decoded plate. text: A-Z 0-9; char_probs: each character's peak probability;
    score: log-probability of the path (with priors); template: the slots it fits, or
    None for the free reading; confidence: mean char prob, scaled down when unfit."""

    text: str
    confidence: float
    char_probs: tuple[float, ...]
    score: float
    template: str | None


def _slot_mask(slot: str) -> np.ndarray:
    """Additive (N_COLS,) mask: 0 where the slot takes the column, NEG elsewhere (blank too)."""
    mask = np.full(N_COLS, NEG)
    if slot == LETTER:
        mask[1:27] = 0.0
    elif slot == DIGIT:
        mask[27:] = 0.0
    elif slot == ANY:
        mask[1:] = 0.0
    elif slot in ALPHABET:
        mask[1 + ALPHABET.index(slot)] = 0.0
    return mask


def _prior(rare_letters: str, params: DecodeParams) -> np.ndarray:
    """(N_COLS,) log prior of starting each character: the rare letters pay rare_letter_nats."""
    prior = np.zeros(N_COLS)
    for ch in rare_letters:
        prior[1 + ALPHABET.index(ch)] = -params.rare_letter_nats
    return prior


def with_confusions(lp: np.ndarray, cost_nats: float) -> np.ndarray:
    """Log-probs where each glyph of a look-alike pair gets at least its partner's, less
    cost_nats: a letter slot can read the O the model called 0, at a price."""
    out = lp.copy()
    for a, b in CONFUSIONS:
        ia, ib = 1 + ALPHABET.index(a), 1 + ALPHABET.index(b)
        out[:, ia] = np.maximum(lp[:, ia], lp[:, ib] - cost_nats)
        out[:, ib] = np.maximum(lp[:, ib], lp[:, ia] - cost_nats)
    return out


def compress_blanks(ctc: np.ndarray) -> np.ndarray:
    """Log-probabilities (T', N_COLS) with runs of near-certain blank timesteps summed into one."""
    lp = np.log(np.clip(ctc, 1e-12, 1.0))
    sure = ctc[:, 0] >= BLANK_RUN_P
    keep: list[np.ndarray] = []
    for t in range(len(lp)):
        if sure[t] and t > 0 and sure[t - 1] and keep:
            keep[-1] = keep[-1] + lp[t]
        else:
            keep.append(lp[t].copy())
    return np.stack(keep) if keep else np.zeros((0, N_COLS))


def _viterbi(
    lp: np.ndarray, allow: np.ndarray, prior: np.ndarray, history: list[tuple[np.ndarray, np.ndarray]] | None = None
) -> np.ndarray:
    """Best path scores (M,) for M templates of n slots; allow: (M, n, N_COLS) additive masks.

    States: blank k (k characters read so far, k = 0..n) and (slot k, character c). With
    `history`, the (blank, char) scores of template 0 at every timestep are appended.
    """
    m, n, _ = allow.shape
    enter = allow + prior[:, None, :]  # starting a character at a slot (prior paid once per character)
    blank = np.full((m, n + 1), NEG)
    blank[:, 0] = lp[0, 0]
    char = np.full((m, n, N_COLS), NEG)
    char[:, 0] = enter[:, 0] + lp[0]
    for t in range(1, len(lp)):
        if history is not None:
            history.append((blank[0].copy(), char[0].copy()))
        new_blank = blank.copy()
        new_blank[:, 1:] = np.maximum(blank[:, 1:], char.max(axis=2))
        other = _best_other(char)  # (m, n, C): slot k's best character other than c
        best = np.maximum(char, blank[:, :n, None] + enter)
        best[:, 1:] = np.maximum(best[:, 1:], other[:, :-1] + enter[:, 1:])
        char = best + lp[t]
        blank = new_blank + lp[t, 0]
    if history is not None:
        history.append((blank[0].copy(), char[0].copy()))
    return np.asarray(np.maximum(blank[:, n], char[:, n - 1].max(axis=1)))


def _best_other(char: np.ndarray) -> np.ndarray:
    """Per (template, slot, c): the best score over characters other than c."""
    order = np.argpartition(char, -2, axis=-1)[..., -2:]
    two = np.take_along_axis(char, order, axis=-1)
    hi = np.where(two[..., 1:] >= two[..., :1], order[..., 1:], order[..., :1])
    top1, top2 = two.max(axis=-1, keepdims=True), two.min(axis=-1, keepdims=True)
    return np.asarray(np.where(np.arange(char.shape[-1]) == hi, top2, top1))


def _backtrack(lp: np.ndarray, allow: np.ndarray, prior: np.ndarray) -> list[tuple[int, list[int]]]:
    """The best path of one template (allow: (n, N_COLS)): per slot, (column, its timesteps)."""
    history: list[tuple[np.ndarray, np.ndarray]] = []
    _viterbi(lp, allow[None], prior[None], history)
    enter = allow + prior
    n = allow.shape[0]
    blank, char = history[-1]
    state = (n, -1) if blank[n] >= char[n - 1].max() else (n - 1, int(char[n - 1].argmax()))
    held: dict[int, tuple[int, list[int]]] = {}
    for t in range(len(lp) - 1, -1, -1):
        k, c = state
        if c >= 0:
            held.setdefault(k, (c, []))[1].append(t)
        if t == 0:
            break
        p_blank, p_char = history[t - 1]
        if c < 0:  # in blank k: stayed, or came from slot k-1's best character
            if k > 0 and p_char[k - 1].max() > p_blank[k]:
                state = (k - 1, int(p_char[k - 1].argmax()))
            continue
        stay, from_blank = p_char[k, c], p_blank[k] + enter[k, c]
        prev = p_char[k - 1].copy() if k > 0 else None
        if prev is not None:
            prev[c] = NEG
        from_prev = prev.max() + enter[k, c] if prev is not None else NEG
        if from_prev > max(stay, from_blank) and prev is not None:
            state = (k - 1, int(prev.argmax()))
        elif from_blank > stay:
            state = (k, -1)
    return [held[k] for k in sorted(held)]


def _greedy(ctc: np.ndarray) -> str:
    best = ctc.argmax(axis=1)
    out = [ALPHABET[j - 1] for i, j in enumerate(best) if j != 0 and (i == 0 or best[i - 1] != j)]
    return "".join(out)


def decode_plate(ctc: np.ndarray, syntax: PlateSyntax, params: DecodeParams | None = None) -> PlateDecoding | None:
    """The best reading of a (T, 37) plate CTC matrix under the syntax; None when empty."""
    params = params or DecodeParams()
    ctc = np.asarray(ctc, dtype=np.float64)
    if ctc.ndim != 2 or ctc.shape[1] != N_COLS:
        raise InputError(f"expected a CTC matrix of shape (T, {N_COLS}), got shape {ctc.shape}")
    lp = compress_blanks(ctc)
    if len(lp) == 0:
        return None
    lp = with_confusions(lp, params.confusion_nats)
    greedy = _greedy(ctc)
    best: tuple[float, _Candidate] | None = None
    for n, items in _groups(syntax, greedy, params).items():
        if n > len(lp):
            continue
        allow = np.stack([np.stack([_slot_mask(s) for s in c.slots]) for c in items])
        prior = np.stack([_prior(c.rare_letters, params) for c in items])
        scores = _viterbi(lp, allow, prior) + np.array([c.weight for c in items])
        i = int(scores.argmax())
        if scores[i] > NEG / 2 and (best is None or scores[i] > best[0]):
            best = (float(scores[i]), items[i])
    if best is None:
        return None
    score, won = best
    slots = won.slots
    path = _backtrack(lp, np.stack([_slot_mask(s) for s in slots]), _prior(won.rare_letters, params))
    text = "".join(ALPHABET[c - 1] for c, _ in path)
    char_probs = tuple(float(np.exp(lp[ts, c].max())) for c, ts in path)
    fits = slots != ANY * len(slots) or syntax.matches(text)
    confidence = float(np.mean(char_probs)) * (1.0 if fits else params.unfit_factor)
    return PlateDecoding(text, confidence, char_probs, score, slots if fits else None)


@dataclass(frozen=True)
class _Candidate:
    slots: str
    weight: float  # log weight: 0, or -free_penalty_nats for the free reading
    rare_letters: str


def _groups(syntax: PlateSyntax, greedy: str, params: DecodeParams) -> dict[int, list[_Candidate]]:
    """Templates to score by slot count; the free reading of the greedy length pays
    free_penalty_nats. Lengths more than MAX_LENGTH_CHANGE from the greedy read's are not tried."""
    groups: dict[int, list[_Candidate]] = defaultdict(list)
    for t in syntax.templates:
        change = abs(len(t) - len(greedy))
        if not greedy or change <= MAX_LENGTH_CHANGE:
            groups[len(t)].append(_Candidate(t.slots, -params.length_change_nats * change, t.rare_letters))
    if greedy:
        penalty = params.custom_free_penalty_nats if syntax.custom else params.free_penalty_nats
        groups[len(greedy)].append(_Candidate(ANY * len(greedy), -penalty, syntax.rare_letters))
    return groups
