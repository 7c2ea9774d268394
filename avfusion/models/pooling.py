"""Pooling a sequence of frame vectors into fixed-size vectors: GMM Fisher vectors and VLAD.

Both encodings are sums over frames of per-(frame, component) statistics, normalised afterwards, so
one engine pools them three ways:

- `window`: a centred window of +-W frames around every frame, clipped at the sequence's ends: one
  vector per frame. Running sums along time and window sums by differences: the cost does not grow
  with W.
- `segments`: one vector per labelled stretch (a reference phone), given to each of its frames.
- `pool`: one vector per sequence.

Sequences come as (B, T, D) with a mask (B, T) that is True on a prefix of real frames (padding at
the end, as the sequence batches build them).

Window sums, two ways (`window_algorithm`). Statistics are kept only for the (frame, component) pairs
whose posterior exceeds `posterior_floor` (VLFeat skips posteriors below 1e-6; the default 1e-8 keeps
improved vectors within 1e-4 of the exact ones; 0 keeps every pair). Neither way costs more for a wider
window.
- `dense` (evaluation on the CPU: `auto` without gradients): one compiled pass per sequence slides the
  window's whitened sums along time, a frame in and a frame out (float64), and writes every component's
  block (scaled and rooted only where the component is in the window). Per frame O(pairs above the floor
  x D) to update plus O(K x D) to write the vector, which is the vector's size, so it wins at any
  density: on K = D = 64, W = 25, one thread (`benchmarks/fisher_pooling.py`, best of 3) 73k frames/s
  on dense posteriors (60 of 64 components per frame; 76-78x a scikit-image loop, 19-21x VLFeat's),
  113k on a run's real hidden sequences (3.3 per frame; 151x, 23.5x). Within 2e-5 of scikit-image's
  vectors (the signed square root magnifies rounding near 0).
  With gradients (`auto` on the CPU where more than 90% of the (frame, component) pairs are above the
  floor) or off the CPU the same sums come from float64 running sums along time of every pair,
  O(B T K D) memory, the same cost at any density.
- `sparse` (`auto` with gradients up to 90%, and off the CPU): running sums over each component's pairs
  only (float64), window ends by binary search; the blocks of components with a pair in the window are
  built. Training's path on real hidden sequences (5% of pairs at K = 64, 36% at K = 8): 1.4-1.5x the
  dense running sums at 29% of pairs, 0.9-1x at 94% (`DENSE_TRAINING_ABOVE`).

Improved Fisher vector (Perronnin et al. 2010; Sanchez et al. IJCV 2013; VLFeat `vl_fisher`) of a
diagonal GMM (w_k, mu_k, sigma_k) over T frames, gamma_t(k) the posterior of component k:

    G_alpha_k  = 1/(T sqrt(w_k))   sum_t (gamma_t(k) - w_k)                       (optional block)
    G_mu_kd    = 1/(T sqrt(w_k))   sum_t gamma_t(k) (x_td - mu_kd) / sigma_kd
    G_sigma_kd = 1/(T sqrt(2 w_k)) sum_t gamma_t(k) [(x_td - mu_kd)^2 / sigma_kd^2 - 1]
    improved:  z <- sign(z) |z|^0.5, then z <- z / max(||z||_2, eps)

Layout [G_alpha (K) | per component k: G_mu_k (D), G_sigma_k (D)]. skimage.feature.fisher_vector
orders [G_alpha | all G_mu | all G_sigma] with the sigma block of opposite sign (`skimage_layout`
converts). The whitened terms gamma (x - mu)/sigma and gamma ((x - mu)^2/sigma^2 - 1) are what is
summed. Learnable (Deep Fisher Kernels, Sydorov et al. CVPR 2014): mixture logits, means and log
standard deviations are parameters, initialised from EM.

VLAD (Jegou et al. CVPR 2010): residuals to the nearest codeword summed per codeword, then
intra-normalisation (each codeword's block to unit L2, Arandjelovic & Zisserman CVPR 2013), signed
square root and L2. NetVLAD (Arandjelovic et al. CVPR 2016): soft assignment softmax(W x + b) with a
learnable codebook, W = 2 alpha c, b = -alpha ||c||^2 at the start (the soft version of nearest-codeword).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import numba
import numpy as np
import torch
from torch import nn

WINDOW_ALGORITHMS = ("auto", "sparse", "dense")
# Training (forward and backward, K = D = 64, W = 25, one thread; benchmarks/fisher_pooling.py
# --training-scales): the dense running sums cost the same at any density, the sparse pairs more the more pairs
# there are, and the allocator's state moves the crossover. In a fresh process dense is 1.08-1.15x sparse at
# 94% of pairs above the floor, 1.02-1.09x at 82%, 0.88-0.90x at 59%; after the benchmark's other work
# 0.99-1.16x at 94%, 0.71-0.94x at 82%. Dense only where it was never clearly slower.
DENSE_TRAINING_ABOVE = 0.9
SQRT_FLOOR = 1e-12  # |z| below this has a signed square root of 0 (and no infinite gradient)


def signed_sqrt(z: torch.Tensor) -> torch.Tensor:
    return torch.sign(z) * torch.sqrt(z.abs().clamp_min(SQRT_FLOOR))


def l2_normalise(z: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return z / z.norm(dim=-1, keepdim=True).clamp_min(eps)


def window_sums(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """(B, T, S) -> (B, T, S) sums of rows lo[b, t] <= s < hi[b, t], by differences of float64 running sums."""
    running = torch.nn.functional.pad(x.double().cumsum(dim=1), (0, 0, 1, 0))
    rows = torch.arange(x.shape[0], device=x.device)[:, None]
    return (running[rows, hi] - running[rows, lo]).to(x.dtype)


@numba.njit(parallel=True, cache=True)
def _assemble(running, first, last, rows, comp, scales, intra, improved, l2, extra, out):  # pragma: no cover (numba)
    """Write the vectors of output rows: for block q of row r (blocks grouped by row, `rows` the CSR
    offsets), the statistics running[last[q]] - running[first[q]] scaled (`scales` (Q, 2): first and
    second half) or intra-normalised, signed-square-rooted, then each row L2-normalised with its
    leading `extra` entries. Each row is cleared first, so `out` may be reused memory."""
    n_extra = extra.shape[1]
    width = running.shape[1]
    half = width // 2
    for r in numba.prange(out.shape[0]):
        out[r, :] = 0
        square = 0.0
        for e in range(n_extra):
            out[r, e] = extra[r, e]
            square += extra[r, e] * extra[r, e]
        for q in range(rows[r], rows[r + 1]):
            base = n_extra + comp[q] * width
            a, b = first[q], last[q]
            inverse = 1.0
            if intra:
                block = 0.0
                for j in range(width):
                    v = running[b, j] - running[a, j]
                    block += v * v
                inverse = 1.0 / max(np.sqrt(block), 1e-12)
            for j in range(width):
                v = running[b, j] - running[a, j]
                v *= inverse if intra else scales[q, 0 if j < half else 1]
                if improved:
                    v = np.sqrt(v) if v >= 0 else -np.sqrt(-v)
                out[r, base + j] = v
                square += v * v
        if l2:
            inverse = 1.0 / max(np.sqrt(square), 1e-12)
            for e in range(n_extra):
                out[r, e] *= inverse
            for q in range(rows[r], rows[r + 1]):
                base = n_extra + comp[q] * width
                for j in range(width):
                    out[r, base + j] *= inverse


# reassociation lets the compiler vectorise the sums of squares; no NaN or infinity arises in these sums
FAST = {"reassoc", "contract", "nsz", "arcp"}


@numba.njit(inline="always", fastmath=FAST)
def _slide(acc, active, x_in, g_in, x_out, g_out, shifted, inv_scale, floor, second):  # pragma: no cover (numba)
    """Move the window sums `acc` (K, S) on: add the whitened statistics of frame x_in with weights g_in
    and remove those of x_out with g_out (weights <= floor count as absent). z = x * inv_scale - shifted,
    shifted = centre * inv_scale: one multiply-add (in float64 the two terms' cancellation costs about
    1e-11 of z for a variance of 1e-8, as in the near-zero-variance test). The first- and second-order
    halves are updated in separate loops: one loop writing both halves of a row does not vectorise
    (measured 2x slower)."""
    d = x_in.shape[0]
    for c in range(g_in.shape[0]):
        entering, leaving = g_in[c] > floor, g_out[c] > floor
        if not (entering or leaving):
            continue
        active[c] += (1 if entering else 0) - (1 if leaving else 0)
        if active[c] == 0:  # the component left the window: exactly zero, not a rounding residue
            acc[c, :] = 0.0
            continue
        g1 = g_in[c] if entering else 0.0
        g2 = g_out[c] if leaving else 0.0
        first = acc[c, :d]
        for j in range(d):
            z1 = x_in[j] * inv_scale[c, j] - shifted[c, j]
            z2 = x_out[j] * inv_scale[c, j] - shifted[c, j]
            first[j] += g1 * z1 - g2 * z2
        if second:
            squares = acc[c, d:]
            for j in range(d):
                z1 = x_in[j] * inv_scale[c, j] - shifted[c, j]
                z2 = x_out[j] * inv_scale[c, j] - shifted[c, j]
                squares[j] += g1 * (z1 * z1 - 1.0) - g2 * (z2 * z2 - 1.0)


@numba.njit(parallel=True, cache=True, fastmath=FAST)
def _dense_window(x, gamma, lengths, centres, inv_scale, half_width, floor, second, scales, intra, improved, l2,
                  extra, out):  # pragma: no cover (numba)
    """Window vectors of every frame of sequences x (B, T, D) with assignment weights gamma (B, T, K):
    the window's sums slide along time (one frame in, one out, in float64), so a frame costs
    O(active components x D) to update and O(K x S) to write, whatever the width. Blocks as `_assemble`;
    `scales` (K, 2) are per-frame factors of each block's halves, divided by the window's frame count."""
    n_seq, t_max, d = x.shape
    k = gamma.shape[2]
    width = d * (2 if second else 1)
    half = width // 2
    n_extra = extra.shape[1]
    shifted = centres * inv_scale
    for b in numba.prange(n_seq):
        acc = np.zeros((k, width))
        active = np.zeros(k, np.int64)
        absent = np.full(k, -1.0)  # the weights of no frame (below any floor)
        frames = x[b].astype(np.float64)
        n, lo, hi = lengths[b], 0, 0
        for t in range(t_max):
            o = out[b * t_max + t]
            if t >= n:
                o[:] = 0
                continue
            new_lo, new_hi = max(0, t - half_width), min(n, t + half_width + 1)
            while hi < new_hi or lo < new_lo:  # usually one frame in and one out
                entering, leaving = hi < new_hi, lo < new_lo
                _slide(acc, active, frames[hi if entering else 0], gamma[b, hi] if entering else absent,
                       frames[lo], gamma[b, lo] if leaving else absent, shifted, inv_scale, floor, second)
                hi += 1 if entering else 0
                lo += 1 if leaving else 0
            square = 0.0
            for e in range(n_extra):
                o[e] = extra[b * t_max + t, e]
                square += o[e] * o[e]
            for c in range(k):
                a = acc[c]
                r = o[n_extra + c * width:n_extra + (c + 1) * width]  # square roots in the output's precision
                if active[c] == 0:  # most components of a sparse window: nothing to scale or root
                    r[:] = 0
                    continue
                first_half = second_half = 1.0 / (hi - lo)
                if intra:
                    block = 0.0
                    for j in range(width):
                        block += a[j] * a[j]
                    first_half = second_half = 1.0 / max(np.sqrt(block), 1e-12)
                else:
                    first_half *= scales[c, 0]
                    second_half *= scales[c, 1]
                for j in range(half):
                    r[j] = a[j] * first_half
                for j in range(half, width):
                    r[j] = a[j] * second_half
                if improved:
                    part = r[0] - r[0]  # a block's sum in the output's precision: it vectorises with the roots
                    for j in range(width):
                        v = r[j]
                        magnitude = np.abs(v)
                        r[j] = np.copysign(np.sqrt(magnitude), v)
                        part += magnitude
                    square += part
                else:
                    for j in range(width):
                        square += r[j] * r[j]
            if l2:
                inverse = 1.0 / max(np.sqrt(square), 1e-12)
                for e in range(n_extra):
                    o[e] *= inverse
                for c in range(k):
                    if active[c] > 0:  # the other blocks are zero
                        r = o[n_extra + c * width:n_extra + (c + 1) * width]
                        for j in range(width):
                            r[j] *= inverse


@dataclass
class Pairs:
    """The (frame, component) pairs that carry statistics."""

    row: torch.Tensor  # (P,) frame index in the flattened (B T) frames
    comp: torch.Tensor  # (P,) component (Gaussian or codeword)
    stats: torch.Tensor  # (P, S) the pair's statistics (summed over frames)
    weights: torch.Tensor  # (N, K) every frame's assignment weights (zero on padding)


class SequencePooling(nn.Module, abc.ABC):
    """Sums of per-(frame, component) statistics over windows, segments or whole sequences, normalised."""

    n_components: int
    posterior_floor: float = 1e-8
    window_algorithm: str = "auto"  # auto | sparse | dense (module docstring)

    def set_window_path(self, posterior_floor: float, window_algorithm: str) -> None:
        if window_algorithm not in WINDOW_ALGORITHMS:
            raise ValueError(f"fusion.window_algorithm must be one of {WINDOW_ALGORITHMS}, not {window_algorithm!r}")
        if posterior_floor < 0:
            raise ValueError(f"fusion.posterior_floor must be >= 0, not {posterior_floor}")
        self.posterior_floor, self.window_algorithm = posterior_floor, window_algorithm

    @abc.abstractmethod
    def frame_weights(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) frames -> (N, K) their assignment weights (GMM posteriors, VLAD assignments)."""

    @abc.abstractmethod
    def whitening(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(centres (K, D), inverse scales (K, D), second order): a frame's statistics for component k
        are gamma z and, if second order, gamma (z^2 - 1), with z = (x - centre_k) * inverse_scale_k."""

    def pairs(self, x: torch.Tensor, valid: torch.Tensor) -> Pairs:
        """Statistics of the frames `x` (N, D) where `valid` (N,), for their active components."""
        return self._pairs(x, self.frame_weights(x) * valid[:, None].to(x.dtype))

    def _pairs(self, x: torch.Tensor, weights: torch.Tensor) -> Pairs:
        row, comp = (weights > self.posterior_floor).nonzero(as_tuple=True)
        return Pairs(row, comp, self.statistics(x[row][:, None, :], comp[:, None], weights[row, comp][:, None])[:, 0],
                     weights)

    def statistics(self, x: torch.Tensor, comp: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(N, 1, D) frames, (N, C) components and their (N, C) weights -> (N, C, S) statistics."""
        centres, inverse_scales, second = self.whitening()
        z = (x - centres[comp]) * inverse_scales[comp]
        g = weights[..., None]
        return torch.cat([g * z, g * (z * z - 1)], dim=-1) if second else g * z

    @abc.abstractmethod
    def finalise_blocks(self, sums: torch.Tensor, comp: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """(Q, S) summed statistics of component `comp` over `counts` frames -> (Q, B) encoding blocks."""

    def finalise_extra(self, weight_sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor | None:
        """(M, K) summed assignment weights over `counts` (M,) frames -> (M, E) extra leading entries."""
        return None

    block_dim: int
    global_l2: bool = True

    @property
    def output_dim(self) -> int:
        extra = self.finalise_extra(torch.zeros(1, self.n_components), torch.ones(1))
        return (0 if extra is None else extra.shape[1]) + self.n_components * self.block_dim

    intra_normalise: bool = False  # VLAD: each block to unit L2 before the signed square root
    improved: bool = True

    def block_scales(self, comp: torch.Tensor, counts: torch.Tensor) -> torch.Tensor | None:
        """(Q, 2) factors of the first and second half of each block (None: intra-normalised instead)."""
        return None

    def _encode(self, running: torch.Tensor, first: torch.Tensor, last: torch.Tensor, out: torch.Tensor,
                comp: torch.Tensor, weight_sums: torch.Tensor, counts: torch.Tensor, n_out: int,
                valid: torch.Tensor | None = None, buffer: np.ndarray | None = None) -> torch.Tensor:
        """Vectors of `n_out` outputs. Block q (output `out[q]`, component `comp[q]`, `out` ascending) sums
        the statistics running[last[q]] - running[first[q]]; blocks not listed are zero, and so are
        outputs that are not `valid` (padding)."""
        extra = self.finalise_extra(weight_sums, counts)
        if extra is not None and valid is not None:
            extra = extra * valid[:, None].to(extra.dtype)
        wants_grad = torch.is_grad_enabled() and (running.requires_grad or (extra is not None and extra.requires_grad))
        if not wants_grad and running.device.type == "cpu":  # evaluation, frozen pooling: one compiled pass
            return self._assemble(running, first, last, out, comp, extra, counts, n_out, buffer)
        sums = (running[last] - running[first]).to(weight_sums.dtype)
        return self._normalised(self.finalise_blocks(sums, comp, counts[out]), out, comp, extra, n_out)

    def _normalised(self, blocks: torch.Tensor, out: torch.Tensor, comp: torch.Tensor, extra: torch.Tensor | None,
                    n_out: int) -> torch.Tensor:
        """(n_out, F) vectors from blocks (Q, S) of output `out[q]`, component `comp[q]` (others zero), the
        extra leading entries, all L2-normalised together (differentiable)."""
        if self.global_l2:
            square = blocks.new_zeros(n_out).index_add(0, out, (blocks * blocks).sum(dim=1))
            if extra is not None:
                square = square + (extra * extra).sum(dim=1)
            norm = square.clamp_min(1e-24).sqrt()  # (clamped first: no infinite gradient for a zero vector)
            blocks = blocks / norm[out, None]
            extra = None if extra is None else extra / norm[:, None]
        dense = blocks.new_zeros(n_out, self.n_components, blocks.shape[1]).index_put((out, comp), blocks).flatten(1)
        return dense if extra is None else torch.cat([extra, dense], dim=1)

    def _assemble(self, running, first, last, out, comp, extra, counts, n_out, buffer=None) -> torch.Tensor:
        scales = self.block_scales(comp, counts[out])
        extra_np = self._extra_array(extra, n_out)
        rows = np.searchsorted(out.numpy(), np.arange(n_out + 1))
        vectors = self._output(n_out, extra_np.shape[1], running.shape[1], counts.dtype, buffer)
        _assemble(running.double().numpy(), first.numpy(), last.numpy(), rows, comp.numpy(),
                  np.zeros((len(comp), 2)) if scales is None else scales.double().numpy(),
                  self.intra_normalise, self.improved, self.global_l2, extra_np, vectors)
        return torch.from_numpy(vectors)

    @staticmethod
    def _extra_array(extra: torch.Tensor | None, n_out: int) -> np.ndarray:
        return np.zeros((n_out, 0), np.float64) if extra is None else extra.double().numpy()

    def _output(self, n_out: int, n_extra: int, block_dim: int, dtype: torch.dtype,
                buffer: np.ndarray | None) -> np.ndarray:
        """(n_out, F) memory for compiled vectors: in `buffer` where it is large enough and of the dtype."""
        dtype = np.float64 if dtype == torch.float64 else np.float32
        shape = (n_out, n_extra + self.n_components * block_dim)
        if buffer is not None and buffer.dtype == dtype and buffer.size >= shape[0] * shape[1]:
            return buffer[:shape[0] * shape[1]].reshape(shape)  # memory already mapped: no page faults
        return np.empty(shape, dtype)

    def window(self, x: torch.Tensor, mask: torch.Tensor, half_width: int,
               buffer: np.ndarray | None = None) -> torch.Tensor:
        """(B, T, D), mask (B, T) -> (B, T, F): frame t pooled over [t - W, t + W] within its sequence.

        `buffer`: a flat array the vectors may be written into when no gradient is wanted (the result is
        then a view of it, valid until the next call with the same buffer): fresh memory for every call
        costs more in page faults than the pooling itself."""
        b, t, d = x.shape
        times = torch.arange(t, device=x.device)[None, :]
        lo = (times - half_width).clamp_min(0).expand(b, t)
        hi = torch.minimum(times + half_width + 1, mask.sum(dim=1, keepdim=True)).clamp_min(lo)
        counts = (hi - lo).clamp_min(1).to(x.dtype).reshape(-1)
        wants_grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))
        weights = self.frame_weights(x.reshape(b * t, d)) * mask.reshape(-1, 1).to(x.dtype)
        algorithm = self.window_algorithm
        if algorithm == "auto":
            algorithm = self.auto_algorithm(weights, mask, wants_grad, x.device.type)
        if algorithm == "dense":
            extra = self.finalise_extra(window_sums(weights.reshape(b, t, -1), lo, hi).reshape(b * t, -1), counts)
            if extra is not None:
                extra = extra * mask.reshape(-1, 1).to(extra.dtype)
            if wants_grad or x.device.type != "cpu":
                vectors = self._window_dense(x, weights, lo, hi, counts, extra).reshape(b, t, -1)
                return vectors * mask[..., None].to(vectors.dtype)  # padding frames get no vector
            return self._window_compiled(x, mask, weights, half_width, counts, extra, buffer).reshape(b, t, -1)
        return self._window_sparse(x, mask, weights, lo, hi, counts, buffer)

    def auto_algorithm(self, weights: torch.Tensor, mask: torch.Tensor, wants_grad: bool, device: str) -> str:
        """`auto`'s choice (measured in benchmarks/fisher_pooling.py): without gradients on the CPU the compiled
        kernel at any density; with gradients on the CPU the dense running sums where more than
        DENSE_TRAINING_ABOVE of the (frame, component) pairs are above the floor, else the sparse pairs."""
        if device != "cpu":
            return "sparse"
        if not wants_grad:
            return "dense"
        return "dense" if self.pair_density(weights, mask) > DENSE_TRAINING_ABOVE else "sparse"

    def pair_density(self, weights: torch.Tensor, mask: torch.Tensor) -> float:
        """The share of the real frames' (frame, component) pairs whose weight is above the floor (`weights`
        (B T, K), zero on padding)."""
        return float((weights > self.posterior_floor).sum()) / max(int(mask.sum()) * self.n_components, 1)

    def _window_compiled(self, x, mask, weights, half_width, counts, extra, buffer) -> torch.Tensor:
        """Evaluation on the CPU: the sliding-window kernel `_dense_window`, whatever the density."""
        b, t, d = x.shape
        centres, inverse_scales, second = self.whitening()
        scales = self.block_scales(torch.arange(self.n_components), torch.ones(self.n_components, dtype=x.dtype))
        extra_np = self._extra_array(extra, b * t)
        vectors = self._output(b * t, extra_np.shape[1], self.block_dim, counts.dtype, buffer)
        _dense_window(np.ascontiguousarray(x.detach().numpy()), weights.double().reshape(b, t, -1).numpy(),
                      mask.sum(dim=1).numpy(), centres.double().numpy(), inverse_scales.double().numpy(),
                      half_width, float(self.posterior_floor), second,
                      np.zeros((self.n_components, 2)) if scales is None else scales.double().numpy(),
                      self.intra_normalise, self.improved, self.global_l2, extra_np, vectors)
        return torch.from_numpy(vectors)

    def _window_dense(self, x, weights, lo, hi, counts, extra) -> torch.Tensor:
        """Differentiable (or on a GPU): every (frame, component) pair's statistics, window sums by
        differences of float64 running sums along time. Memory O(B T K S): for dense posteriors."""
        b, t, d = x.shape
        k = self.n_components
        kept = weights * (weights > self.posterior_floor).to(weights.dtype)
        every = torch.arange(k, device=x.device)
        stats = self.statistics(x.reshape(b * t, 1, d), every[None, :], kept)  # (B T, K, S)
        sums = window_sums(stats.reshape(b, t, -1), lo, hi).reshape(b * t * k, -1)
        out, comp = torch.arange(b * t, device=x.device).repeat_interleave(k), every.repeat(b * t)
        return self._normalised(self.finalise_blocks(sums, comp, counts[out]), out, comp, extra, b * t)

    def _window_sparse(self, x, mask, weights, lo, hi, counts, buffer) -> torch.Tensor:
        """Only the (frame, component) pairs above the posterior floor: running sums per component over
        its pairs, window ends by binary search. For few components per frame."""
        b, t, d = x.shape
        k = self.n_components
        valid = mask.reshape(-1)
        p = self._pairs(x.reshape(b * t, d), weights)
        pb, pt = p.row // t, p.row % t
        # pairs sorted by (sequence, component, time): a component's window is a range of its pairs
        key = (pb * k + p.comp) * (t + 1) + pt
        key, order = key.sort()
        running = torch.nn.functional.pad(p.stats[order].double().cumsum(dim=0), (0, 0, 1, 0))
        # the (frame, component) blocks to build: components with a pair inside the frame's window
        present = torch.zeros(b, t, k, dtype=x.dtype, device=x.device).index_put((pb, pt, p.comp),
                                                                                  torch.ones_like(pt, dtype=x.dtype))
        active = (window_sums(present, lo, hi) > 0.5) & mask[..., None]
        ob, ot, ok = active.nonzero(as_tuple=True)
        base = (ob * k + ok) * (t + 1)
        first = torch.searchsorted(key, base + lo[ob, ot])
        last = torch.searchsorted(key, base + hi[ob, ot])
        weight_sums = window_sums(p.weights.reshape(b, t, k), lo, hi).reshape(b * t, k)
        return self._encode(running, first, last, ob * t + ot, ok, weight_sums, counts, b * t,
                            valid, buffer).reshape(b, t, -1)

    def _grouped(self, x: torch.Tensor, mask: torch.Tensor, group: torch.Tensor, n_groups: int) -> torch.Tensor:
        """(n_groups, F) vectors of the frames of each group (`group` (B, T): group index of each frame)."""
        b, t, _ = x.shape
        k = self.n_components
        valid = mask.reshape(-1)
        p = self.pairs(x.reshape(b * t, -1), valid)
        g = group.reshape(-1)
        sums = p.stats.new_zeros(n_groups * k, p.stats.shape[1]).index_add(0, g[p.row] * k + p.comp, p.stats)
        counts = x.new_zeros(n_groups).index_add(0, g[valid], torch.ones_like(g[valid], dtype=x.dtype)).clamp_min(1)
        weight_sums = x.new_zeros(n_groups, k).index_add(0, g[valid], p.weights[valid])
        out = torch.arange(n_groups, device=x.device).repeat_interleave(k)
        running = torch.nn.functional.pad(sums.double(), (0, 0, 1, 0))  # row q + 1 holds block q's sums
        first = torch.zeros(len(out), dtype=torch.long, device=x.device)
        return self._encode(running, first, torch.arange(1, len(out) + 1, device=x.device), out,
                            torch.arange(k, device=x.device).repeat(n_groups), weight_sums, counts, n_groups)

    def pool(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, D), mask (B, T) -> (B, F): one encoding of each whole sequence."""
        group = torch.arange(x.shape[0], device=x.device)[:, None].expand(mask.shape)
        return self._grouped(x, mask, group, x.shape[0])

    def segments(self, x: torch.Tensor, mask: torch.Tensor, segment_ids: torch.Tensor) -> torch.Tensor:
        """(B, T, D), mask, segment_ids (B, T) (numbered from 0 within each sequence) -> (B, T, F): every
        frame gets the encoding of its whole segment."""
        ids = torch.where(mask, segment_ids, 0)
        per_sequence = int(ids.max()) + 1
        group = torch.arange(x.shape[0], device=x.device)[:, None] * per_sequence + ids
        encoded = self._grouped(x, mask, group, x.shape[0] * per_sequence)
        return encoded[group] * mask[..., None].to(x.dtype)


class FisherVectorPooling(SequencePooling):
    """Improved Fisher vectors of a diagonal GMM (module docstring); fixed or learnable."""

    def __init__(self, n_components: int, dim: int, learnable: bool = False, alpha_block: bool = False,
                 improved: bool = True, posterior_floor: float = 1e-8, window_algorithm: str = "auto") -> None:
        super().__init__()
        self.n_components, self.dim, self.block_dim = n_components, dim, 2 * dim
        self.alpha_block, self.improved, self.global_l2 = alpha_block, improved, improved
        self.set_window_path(posterior_floor, window_algorithm)
        tensors = {"mixture_logits": torch.zeros(n_components), "means": torch.zeros(n_components, dim),
                   "log_sigmas": torch.zeros(n_components, dim)}
        for name, value in tensors.items():
            if learnable:
                self.register_parameter(name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)

    @torch.no_grad()
    def set_gmm(self, weights: np.ndarray, means: np.ndarray, variances: np.ndarray) -> "FisherVectorPooling":
        """Take a fitted diagonal GMM: weights (K,), means (K, D), variances (K, D) (sklearn's covariances_)."""
        self.mixture_logits.copy_(torch.as_tensor(np.log(weights)))
        self.means.copy_(torch.as_tensor(means))
        self.log_sigmas.copy_(torch.as_tensor(0.5 * np.log(variances)))
        return self

    def posteriors(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K) gamma, by log-sum-exp; the quadratic form as matrix products (no (N, K, D) tensor).

        Expanded, the quadratic form (x^2 prec - 2 x mu prec + mu^2 prec) cancels catastrophically for a
        component of tiny variance (prec ~ 1e8): computed in float64 whatever the input's precision."""
        x64, means, log_sigmas = x.double(), self.means.double(), self.log_sigmas.double()
        precision = torch.exp(-2 * log_sigmas)  # (K, D)
        quadratic = (x64 * x64) @ precision.t() - 2 * x64 @ (means * precision).t() \
            + (means * means * precision).sum(dim=1)
        log_p = torch.log_softmax(self.mixture_logits.double(), dim=0) - log_sigmas.sum(dim=1) - 0.5 * quadratic
        return torch.softmax(log_p, dim=-1).to(x.dtype)  # the constant -D/2 log(2 pi) cancels

    def frame_weights(self, x: torch.Tensor) -> torch.Tensor:
        return self.posteriors(x)

    def whitening(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        return self.means, torch.exp(-self.log_sigmas), True

    def block_scales(self, comp: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        scale = 1 / (counts * torch.sqrt(torch.softmax(self.mixture_logits, dim=0)[comp]))  # 1 / (T sqrt(w_k))
        return torch.stack([scale, scale / math.sqrt(2)], dim=1)

    def finalise_blocks(self, sums: torch.Tensor, comp: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.mixture_logits, dim=0)
        scale = counts * torch.sqrt(w[comp])  # T sqrt(w_k)
        mean, sigma = sums.split(self.dim, dim=1)
        blocks = torch.cat([mean / scale[:, None], sigma / (math.sqrt(2) * scale[:, None])], dim=1)
        return signed_sqrt(blocks) if self.improved else blocks

    def finalise_extra(self, weight_sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor | None:
        if not self.alpha_block:
            return None
        w = torch.softmax(self.mixture_logits, dim=0)
        n = counts[:, None]
        alpha = (weight_sums - n * w) / (n * torch.sqrt(w))
        return signed_sqrt(alpha) if self.improved else alpha

    def skimage_layout(self, vectors: torch.Tensor) -> torch.Tensor:
        """Our (..., F) vectors in skimage.feature.fisher_vector's order and signs (alpha block needed)."""
        k, d = self.n_components, self.dim
        alpha, blocks = vectors[..., :k], vectors[..., k:].unflatten(-1, (k, 2 * d))
        return torch.cat([alpha, blocks[..., :d].flatten(-2), -blocks[..., d:].flatten(-2)], dim=-1)


class VladPooling(SequencePooling):
    """VLAD with a fixed codebook and hard assignment, or NetVLAD (soft, learnable) (module docstring)."""

    def __init__(self, n_clusters: int, dim: int, soft: bool = False, alpha: float = 10.0,
                 posterior_floor: float = 1e-8, window_algorithm: str = "auto") -> None:
        super().__init__()
        self.n_components, self.dim, self.block_dim = n_clusters, dim, dim
        self.soft, self.alpha = soft, alpha
        self.set_window_path(posterior_floor, window_algorithm)
        self.intra_normalise = True
        if soft:
            self.centres = nn.Parameter(torch.zeros(n_clusters, dim))
            self.assign = nn.Linear(dim, n_clusters)
        else:
            self.register_buffer("centres", torch.zeros(n_clusters, dim))

    @torch.no_grad()
    def set_codebook(self, centres: np.ndarray) -> "VladPooling":
        c = torch.as_tensor(centres, dtype=self.centres.dtype)
        self.centres.copy_(c)
        if self.soft:  # softmax(2 a c.x - a |c|^2) is the soft nearest codeword
            self.assign.weight.copy_(2 * self.alpha * c)
            self.assign.bias.copy_(-self.alpha * (c * c).sum(dim=1))
        return self

    def assignments(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K): soft assignments (NetVLAD), or one-hot nearest codewords (VLAD)."""
        if self.soft:
            return torch.softmax(self.assign(x), dim=-1)
        distances = (self.centres * self.centres).sum(dim=1) - 2 * x @ self.centres.t()  # + |x|^2, same for all
        return nn.functional.one_hot(distances.argmin(dim=-1), self.n_components).to(x.dtype)

    def frame_weights(self, x: torch.Tensor) -> torch.Tensor:
        return self.assignments(x)

    def whitening(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        return self.centres, torch.ones_like(self.centres), False

    def finalise_blocks(self, sums: torch.Tensor, comp: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        return signed_sqrt(l2_normalise(sums))  # intra-normalisation, then the signed square root
