"""Hybrid HMM/DNN decoding: a network's class posteriors turned into a unit sequence by Viterbi search.

- Scaled likelihoods: log p(x | s) ~ log P(s | x) - prior_exponent * log P(s), with P(s) the classes'
  frame frequencies on the training split (add-one), times an acoustic scale.
- Topology: a loop over the scheme's units (phones, sil among them; or words), each a left-to-right HMM
  of `states_per_unit` (3) states. An HMM state (u, k) emits the classes of unit u that cover state k:
  with `phone` labels the three states share the phone's posterior (so a phone lasts at least 3 frames),
  with `phone_state` each state has its own class, with `cd_state` the posteriors of every context of
  (u, k) are summed (the loop has no triphone contexts: states fold to the 39 phones for decoding).
- Self-loop probability of unit u from its mean training duration d_u: 1 - S / d_u (clipped), so the
  expected time in the HMM matches the data.
- Unit language model (`avfusion.decoding.lm`) on the training alignments, an LM weight and an insertion
  penalty per unit entered.

`decoding=viterbi` (`ViterbiDecoding`) makes one: fitted on train, then per model acoustic scale, LM
weight and penalty are chosen by a grid search on the dev split in every evaluated condition, each tuning
policy's point from its conditions' edit counts (`tune`: the one used);
what the decoder learned (priors, LM, durations) comes from the training split only, and is saved with
the run (`decoder.npz`, `decoder.json`).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from scipy import sparse

from avfusion.errors import ConfigError, UserError
from avfusion.corpus.labels import STATES, LabelScheme
from avfusion.corpus.phones import SIL
from avfusion.decoding.base import CLEAN, TUNING_POLICIES, Decoding, PerCondition
from avfusion.decoding.framewise import DecodedUnit, FramewiseDecoder, unit_runs
from avfusion.frames.labelling import FrameLabeller, split_references
from avfusion.decoding.lm import KINDS, UnitLanguageModel
from avfusion.decoding.viterbi import ViterbiSearch, search_grid
from avfusion.metrics.per import per
from avfusion.utils.atomic import atomic_path, write_text_atomic
from avfusion.utils.rules import check_fields, choice, each, integer, number

log = logging.getLogger(__name__)

MAX_BIGRAM_UNITS = 1000


@dataclass
class ViterbiSettings:
    """What the decoder is fitted with, and the dev grid it is tuned over (`conf/decoding/viterbi.yaml`)."""

    lm: str  # bigram | unigram | none (a flat loop)
    discount: float  # absolute discounting of the bigram
    prior_exponent: float  # posteriors / priors ** prior_exponent
    states_per_unit: int
    max_self_loop: float
    acoustic_scales: list[float]
    lm_weights: list[float]
    insertion_penalties: list[float]

    def __post_init__(self) -> None:
        check_fields(self, "decoding", {
            "lm": choice(KINDS), "discount": number(0, high=1), "prior_exponent": number(0),
            "states_per_unit": integer(1), "max_self_loop": number(above=0, high=1),
            "acoustic_scales": each(number(above=0), non_empty=True), "lm_weights": each(number(0), non_empty=True),
            "insertion_penalties": each(number(), non_empty=True)})

    def check(self, n_units: int) -> None:
        """A bigram loop costs n_units^2 a frame: refuse one over a large vocabulary before any training."""
        if self.lm == "bigram" and n_units > MAX_BIGRAM_UNITS:
            raise ConfigError(f"decoding.lm=bigram over {n_units} units (more than {MAX_BIGRAM_UNITS}) costs "
                             f"{n_units}^2 operations a frame: use decoding.lm=unigram (or none), or "
                             "decoding=framewise")


@dataclass(frozen=True)
class DecoderParams:
    acoustic_scale: float = 1.0
    lm_weight: float = 1.0
    insertion_penalty: float = 0.0

    @classmethod
    def of(cls, point: dict) -> "DecoderParams":
        """The settings of a chosen point (which also carries its dev error rate)."""
        return cls(point["acoustic_scale"], point["lm_weight"], point["insertion_penalty"])


def emission_matrix(scheme: LabelScheme, states_per_unit: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    """(C, U * S) 0/1: which classes each HMM state (u, k) emits (a state position of the scheme, begin,
    middle or end third, maps onto the HMM's states in order), and (U, S): whether any class does."""
    n_units, n_states = len(scheme.units), states_per_unit
    rows, cols = [], []
    n_positions = len(STATES)
    for c, (u, position) in enumerate(zip(scheme.unit_of_class.tolist(), scheme.positions.tolist())):
        for k in range(n_states):
            if position < 0 or min(k * n_positions // n_states, n_positions - 1) == position:
                rows.append(c)
                cols.append(u * n_states + k)
    covered = np.zeros(n_units * n_states, bool)
    covered[cols] = True
    matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(scheme.num_classes, n_units * n_states))
    return matrix, covered.reshape(n_units, n_states)


# grid points decoded per `search_grid` call: vectorised over them, backpointers (frames x states x points) bounded
GRID_BATCH = 16


class HybridDecoder:
    name = "viterbi"

    def __init__(self, scheme: LabelScheme, settings: ViterbiSettings, log_prior: np.ndarray,
                 lm: UnitLanguageModel, self_loop: np.ndarray, params: DecoderParams | None = None) -> None:
        self.scheme, self.settings = scheme, settings
        self.log_prior, self.lm, self.self_loop = log_prior, lm, self_loop
        self.params = params or DecoderParams()
        self.tuning = CLEAN  # on which dev posteriors params were chosen (decoding.tune)
        # dev condition -> edit counts of every grid point (grid() order): what each policy chooses from
        self.dev_errors: dict[str, dict] = {}
        self.points: dict[str, dict] = {}  # tuning policy -> its chosen params (per_condition: by condition)
        n_states = settings.states_per_unit
        self.emits, covered = emission_matrix(scheme, n_states)
        # states no class covers (a unit absent from the scheme's classes) can never be entered
        self.unreachable = ~covered
        prior_states = np.asarray(np.exp(log_prior) @ self.emits).reshape(-1)
        self.log_prior_states = np.log(np.maximum(prior_states, 1e-30))
        # unigram and flat loops: every history enters a unit alike, and the search costs O(U S) a frame
        self.separable = bool(np.all(lm.log_next == lm.log_next[:1]))
        self.log_stay = np.repeat(np.log(self_loop)[:, None], n_states, axis=1)
        self.log_move = np.repeat(np.log1p(-self_loop)[:, None], n_states, axis=1)

    @classmethod
    def fit(cls, settings: ViterbiSettings, scheme: LabelScheme, train_labels: np.ndarray,
            train_offsets: np.ndarray, train_sequences: Sequence[Sequence[int]]) -> "HybridDecoder":
        """Priors and durations from the training frame labels, the LM from the training unit sequences."""
        counts = np.bincount(np.asarray(train_labels), minlength=scheme.num_classes) + 1.0
        log_prior = np.log(counts / counts.sum())
        lm = UnitLanguageModel.fit(train_sequences, len(scheme.units), settings.lm, settings.discount)
        return cls(scheme, settings, log_prior, lm, cls.self_loops(scheme, train_labels, train_offsets, settings))

    @staticmethod
    def self_loops(scheme: LabelScheme, labels: np.ndarray, offsets: np.ndarray, settings: ViterbiSettings) -> np.ndarray:
        """Per unit: 1 - S / mean frames per occurrence on train (runs of the unit in the frame labels)."""
        frames, runs = np.zeros(len(scheme.units)), np.zeros(len(scheme.units))
        units = scheme.unit_of_class[np.asarray(labels)]
        for a, b in zip(offsets[:-1], offsets[1:]):
            for r in unit_runs(units[a:b]):
                frames[r.unit] += r.end - r.start
                runs[r.unit] += 1
        mean = np.where(runs > 0, frames / np.maximum(runs, 1), 2.0 * settings.states_per_unit)
        low = 1.0 - settings.max_self_loop
        return np.clip(1.0 - settings.states_per_unit / mean, low, settings.max_self_loop)

    def state_loglik(self, posteriors: np.ndarray) -> np.ndarray:
        """(T, U, S) scaled log-likelihoods at acoustic scale 1, in C order: the sparse product comes out
        transposed (Fortran order), and the search would copy it on every call (a tuning grid: once per batch)."""
        summed = np.ascontiguousarray(np.asarray(self.emits.T @ np.asarray(posteriors, dtype=np.float64).T).T)
        loglik = np.log(np.maximum(summed, 1e-30)) - self.settings.prior_exponent * self.log_prior_states
        loglik[:, self.unreachable.reshape(-1)] = -np.inf
        return loglik.reshape(len(posteriors), len(self.scheme.units), self.settings.states_per_unit)

    def _arcs(self, params: DecoderParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weights of entering a unit after another, of starting with one and of ending after one."""
        lm, w, penalty = self.lm, params.lm_weight, params.insertion_penalty
        cross = lm.log_next[:1] if self.separable else lm.log_next
        return w * cross - penalty, w * lm.log_start - penalty, w * lm.log_end

    def _searcher(self, params: DecoderParams, spill: str | Path | None = None) -> ViterbiSearch:
        return ViterbiSearch(self.log_stay, self.log_move, *self._arcs(params), spill)

    def search(self, loglik: np.ndarray, params: DecoderParams) -> list[DecodedUnit]:
        searcher = self._searcher(params)
        searcher.push(params.acoustic_scale * loglik)
        return searcher.finish()[1]

    def decode(self, posteriors: np.ndarray) -> list[DecodedUnit]:
        """(T, C) posteriors of one utterance -> its units, with the tuned parameters."""
        return self.search(self.state_loglik(posteriors), self.params)

    def stream(self, spill: str | Path | None = None) -> "ViterbiStream":
        """A decoding fed the posteriors a block at a time (a long recording), backpointers in `spill`."""
        return ViterbiStream(self, self._searcher(self.params, spill))

    def grid(self) -> list[DecoderParams]:
        s = self.settings
        # a flat loop's weight only adds a constant per unit entered, which is what the penalty does
        weights = [1.0] if s.lm == "none" else s.lm_weights
        return [DecoderParams(float(a), float(w), float(p))
                for a, w, p in itertools.product(s.acoustic_scales, weights, s.insertion_penalties)]

    def grid_counts(self, posteriors: Sequence[np.ndarray], references: Sequence[Sequence[str]]) -> dict:
        """Edits of every grid point (grid() order) on these (dev) utterances' posteriors against their scored
        reference unit sequences: all utterances at `GRID_BATCH` points per `search_grid` call."""
        if len(posteriors) != len(references) or not posteriors:
            raise ValueError("tuning needs the posteriors and references of the same, non-empty set of utterances")
        loglik = np.concatenate([self.state_loglik(p) for p in posteriors])
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in posteriors])])
        counts = {"reference_length": 0, "errors": [], "insertions": [], "deletions": []}
        grid = self.grid()
        for first in range(0, len(grid), GRID_BATCH):
            batch = grid[first:first + GRID_BATCH]
            cross, start, end = (np.stack(a) for a in zip(*(self._arcs(q) for q in batch)))
            paths, entered = search_grid(loglik, offsets, [q.acoustic_scale for q in batch], self.log_stay,
                                         self.log_move, cross, start, end)
            for path, flags in zip(paths, entered):
                edits = per(zip(references, self.scored_sequences(path, flags, offsets)))
                counts["reference_length"] = edits.reference_length
                for key, value in (("errors", edits.errors), ("insertions", edits.insertions),
                                   ("deletions", edits.deletions)):
                    counts[key].append(value)
        return counts

    def tune_conditions(self, by_condition: dict[str, Sequence[np.ndarray]], references: Sequence[Sequence[str]],
                        same=lambda a, b: False) -> None:
        """The grid's edit counts on dev in each condition (the same utterances' posteriors in each), and the
        point every tuning policy chooses from them: clean (the clean condition's), pooled (all conditions'
        edits summed) and per_condition (each condition's own). `under` gives the decoder of one. `same(a, b)`:
        conditions a and b have the very same posteriors (a video-only model in audio noise): counted once."""
        self.dev_errors = {}
        for condition, posteriors in by_condition.items():
            twin = next((c for c in self.dev_errors if same(c, condition)), None)
            if twin is not None:
                self.dev_errors[condition] = self.dev_errors[twin]
                continue
            log.info("decoder grid (%d points) on %d dev utterances: %s", len(self.grid()), len(posteriors), condition)
            self.dev_errors[condition] = self.grid_counts(posteriors, references)
        conditions = list(self.dev_errors)
        self.points = {"pooled": self.best(conditions), "per_condition": {c: self.best([c]) for c in conditions}}
        if CLEAN in self.dev_errors:
            self.points[CLEAN] = self.best([CLEAN])

    def tune(self, posteriors: Sequence[np.ndarray], references: Sequence[Sequence[str]]) -> DecoderParams:
        """Tune on one set of (clean dev) utterances: their grid point of lowest error rate, kept."""
        self.tune_conditions({CLEAN: posteriors}, references)
        self.params, self.tuning = DecoderParams.of(self.points[CLEAN]), CLEAN
        return self.params

    def best(self, conditions: Sequence[str]) -> dict:
        """The grid point of lowest error rate on dev pooled over `conditions` (ties: the smallest settings)."""
        counts = [self.dev_errors[c] for c in conditions]
        errors = np.sum([c["errors"] for c in counts], axis=0)
        rates = errors / sum(c["reference_length"] for c in counts)
        best = min(zip(rates.tolist(), self.grid()),
                   key=lambda r: (r[0], r[1].acoustic_scale, r[1].lm_weight, r[1].insertion_penalty))
        return {**asdict(best[1]), "dev_error_rate": best[0]}

    def table(self, conditions: Sequence[str]) -> list[dict]:
        """The grid with its dev error rate pooled over `conditions`."""
        counts = [self.dev_errors[c] for c in conditions]
        length = sum(c["reference_length"] for c in counts)
        return [{**asdict(q), **{k: int(sum(c[k][i] for c in counts)) for k in ("errors", "insertions", "deletions")},
                 "error_rate": sum(c["errors"][i] for c in counts) / length} for i, q in enumerate(self.grid())]

    def under(self, policy: str):
        """This decoder with the settings `policy` chose (per_condition: a `PerCondition` of one per condition);
        all of them recorded, so another policy's decoder needs no new tuning."""
        if policy == "per_condition":
            return PerCondition({c: self._at(point, f"per_condition: {c}")
                                 for c, point in self.points["per_condition"].items()})
        if policy not in self.points:
            raise ValueError(f"no dev tuning for policy {policy!r} (tuned in {sorted(self.dev_errors)})")
        # pooled over the clean condition alone is clean tuning, and says so
        return self._at(self.points[policy], CLEAN if list(self.dev_errors) == [CLEAN] else policy)

    def _at(self, point: dict, tuning: str) -> "HybridDecoder":
        decoder = self.copy()
        decoder.params = DecoderParams.of(point)
        decoder.tuning, decoder.dev_errors, decoder.points = tuning, self.dev_errors, self.points
        log.info("viterbi decoder at the point %s tuning chose: %s (dev error rate %.3f)", tuning,
                 asdict(decoder.params), point["dev_error_rate"])
        edge = [k for k, values in (("acoustic_scale", self.settings.acoustic_scales),
                                    ("lm_weight", self.settings.lm_weights if self.settings.lm != "none" else [1.0]),
                                    ("insertion_penalty", self.settings.insertion_penalties))
                if len(values) > 1 and getattr(decoder.params, k) in (min(values), max(values))]
        if edge:
            log.warning("tuned decoder parameter(s) %s at the edge of the grid (conf/decoding/viterbi.yaml) (%s): "
                        "widen it", edge, tuning)
        return decoder

    def describe(self) -> dict:
        return {"decoder": self.name, "viterbi": asdict(self.settings), "tuned": asdict(self.params),
                "tuning": self.tuning, "tuned_by_policy": self.points}

    def summary(self) -> str:
        lm, t = self.settings.lm, self.params
        on = {"clean": "clean dev", "pooled": "dev pooled over every evaluated condition"}.get(self.tuning, self.tuning)
        return (f"viterbi ({'a flat loop' if lm == 'none' else f'{lm} LM'}; tuned on {on}: acoustic scale "
                f"{t.acoustic_scale}, LM weight {t.lm_weight}, insertion penalty {t.insertion_penalty})")

    def scored_units(self, units: Sequence[DecodedUnit]) -> list[str]:
        return scored(self.scheme, units)

    def scored_sequences(self, path: np.ndarray, entered: np.ndarray, offsets: np.ndarray) -> list[list[str]]:
        """`scored_units` of each utterance of a `search_grid` path, straight from its arrays."""
        starts = np.flatnonzero(entered)
        units = path[starts] // self.settings.states_per_unit
        bounds = np.searchsorted(starts, offsets)
        names = self.scheme.units
        return [[names[u] for u in units[a:b].tolist() if names[u] != SIL] for a, b in zip(bounds[:-1], bounds[1:])]

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        with atomic_path(directory / "decoder.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, log_prior=self.log_prior, log_start=self.lm.log_start, log_next=self.lm.log_next,
                         log_end=self.lm.log_end, self_loop=self.self_loop)
        write_text_atomic(directory / "decoder.json", json.dumps(
            {"decoder": "viterbi", "params": asdict(self.params), "settings": asdict(self.settings),
             "tuning": self.tuning, "points": self.points, "dev_errors": self.dev_errors}, indent=1))

    @classmethod
    def load(cls, directory: str | Path, scheme: LabelScheme) -> "HybridDecoder":
        directory = Path(directory)
        meta = json.loads((directory / "decoder.json").read_text())
        if not (directory / "decoder.npz").is_file():
            raise UserError(f"{directory / 'decoder.npz'}: missing, so the run's viterbi decoder (decoder.json) is "
                            "incomplete; re-create the run, or evaluate it with decoding=framewise")
        with np.load(directory / "decoder.npz", allow_pickle=False) as a:
            lm = UnitLanguageModel(a["log_start"], a["log_next"], a["log_end"])
            decoder = cls(scheme, ViterbiSettings(**meta["settings"]), a["log_prior"], lm, a["self_loop"],
                          DecoderParams(**meta["params"]))
        decoder.tuning = meta.get("tuning", CLEAN)  # folders made before the policies were tuned on clean dev
        # folders made before every policy's points were kept have neither (their own point only)
        decoder.points, decoder.dev_errors = meta.get("points", {}), meta.get("dev_errors", {})
        return decoder

    def copy(self) -> "HybridDecoder":
        """The same fitted arrays, to be tuned for another model."""
        return HybridDecoder(self.scheme, self.settings, self.log_prior, self.lm, self.self_loop, self.params)


@dataclass
class ViterbiDecoding(ViterbiSettings, Decoding):
    """`decoding=viterbi`: the hybrid decoder fitted on train and tuned on dev per model (`tune`: the policy;
    `clean`: on the clean dev split), with the framewise decoder's error rate reported beside it."""

    tune: str
    min_frames: int  # the framewise decoding reported beside (per_framewise)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, "decoding", {"tune": choice(TUNING_POLICIES), "min_frames": integer(1)})

    @property
    def settings(self) -> ViterbiSettings:
        return ViterbiSettings(**{f.name: getattr(self, f.name) for f in fields(ViterbiSettings)})

    def fit(self, scheme: LabelScheme, train_utterances, train) -> HybridDecoder:
        """The hybrid decoder's priors, durations and LM, from the training split only."""
        references = split_references(FrameLabeller(scheme), train_utterances, train)
        sequences = [[scheme.unit_id(x) for x in ref.sequence] for ref in references]
        return HybridDecoder.fit(self.settings, scheme, np.asarray(train.labels), train.offsets, sequences)

    @property
    def policy(self) -> str:
        return self.tune

    def tuned_for(self, fitted: HybridDecoder, dev_posteriors, dev, dev_utterances, conditions: list[str]):
        """A copy of `fitted` with acoustic scale, LM weight and penalty chosen on the dev split for the model
        whose dev posteriors these are, under this policy; every policy's points are chosen and kept (the
        grid is decoded in every condition whatever the policy: the cost of pooled tuning)."""
        references = [r.units for r in split_references(FrameLabeller(fitted.scheme), dev_utterances, dev)]
        decoder = fitted.copy()
        arrays = {c: dev_posteriors(c) for c in conditions}
        decoder.tune_conditions({c: [p[dev.utterance(u)] for u in range(len(dev.ids))] for c, p in arrays.items()},
                                references, same=lambda a, b: arrays[a] is arrays[b])
        return decoder.under(self.tune)

    def restored(self, decoder, conditions: list[str]):
        """A saved decoder under this policy from its kept points, when made with these settings and tuned in
        the conditions the policy reads (pooled: exactly these); else None (tune again)."""
        if not self.fitted_as(decoder):
            return None
        if not decoder.points:  # saved before every policy's points were kept: its own policy only
            return decoder if decoder.tuning == self.tune else None
        needed, have = {CLEAN} if self.tune == CLEAN else set(conditions), set(decoder.dev_errors)
        return decoder.under(self.tune) if (have == needed if self.tune == "pooled" else needed <= have) else None

    def fitted_as(self, decoder) -> bool:
        return isinstance(decoder, HybridDecoder) and decoder.settings == self.settings

    def beside(self, scheme: LabelScheme) -> dict:
        return {"framewise": FramewiseDecoder(scheme, self.min_frames)}

    def describe(self) -> dict:
        return {"tune": self.tune, "min_frames": self.min_frames}


def scored(scheme: LabelScheme, units: Sequence[DecodedUnit]) -> list[str]:
    """Unit names of a decoding, silence left out (scoring convention)."""
    names = scheme.units
    return [names[u.unit] for u in units if names[u.unit] != SIL]


@dataclass
class ViterbiStream:
    """`HybridDecoder.decode` over posteriors that come a block at a time: the same units."""

    decoder: HybridDecoder
    searcher: ViterbiSearch

    def push(self, posteriors: np.ndarray) -> None:
        self.searcher.push(self.decoder.params.acoustic_scale * self.decoder.state_loglik(posteriors))

    def finish(self) -> list[DecodedUnit]:
        return self.searcher.finish()[1]
