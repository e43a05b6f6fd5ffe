"""Seeing every iterate of an attack: a wrapper that watches the model's forward passes while it runs.

torchattacks returns one point per example and hides the path that led there. :class:`TracedAttack`
wraps any attack callable (``attack(x, y) -> adv``) and, while it runs, hooks the forward pass of the
attacked model: every queried row is matched to the example it perturbs (the example of the current
batch whose eps-ball holds it), and per example it keeps

* the *best iterate*: the visited point with the lowest margin (log-probability of the label minus the
  largest other log-probability), so that a point the attack visited but did not return can be used
  (Pintor et al. 2022, "silent success");
* the margin of every query, so that one can tell whether the attack was still improving at its last
  steps ("incomplete optimization"), and the mean best-so-far margin over queries (the loss trace).

Rows outside every eps-ball (a surrogate's internal passes, a transfer attack's other model) are
ignored. The wrapper changes nothing the attack computes; what the model's noise decides during the
attack is only a candidate: callers re-judge the best iterate under their own evaluation rule.
"""

from __future__ import annotations

import torch

TRACE_POINTS = 20  # points kept of the mean best-so-far margin over queries
MAX_HISTORY_ROWS = 20_000_000  # per-query margins kept at most (beyond: the history is truncated)
MATCH_TOL = 1e-5  # slack for "inside the eps ball" (float32 arithmetic in the attacks)
MATCH_COORDS = 64  # coordinates compared to find the candidate example of a row


def margins(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Output of the label minus the largest other output, per row (negative: misclassified). For logits and
    log-probabilities alike this is log p(label) - max log p(other): log-softmax shifts a row by a constant."""
    o = out.detach().float()
    return o.gather(1, y[:, None]).squeeze(1) - o.scatter(1, y[:, None], float("-inf")).amax(1)


class TracedAttack:
    """``attack`` with every forward pass of ``model`` watched (see the module docstring).

    Call it like the attack, batch after batch; ``offset`` counts the examples seen, so the per-example
    results (:attr:`best`, :meth:`still_improving`) are indexed over all batches in call order.
    """

    def __init__(self, attack, model: torch.nn.Module, norm: str, eps: float):
        self.attack, self.model, self.norm, self.eps = attack, model, norm, float(eps)
        self._x = self._y = self._last = None
        self._offset = 0
        self._best: list[torch.Tensor] = []  # per batch: the lowest-margin point
        self._best_margin: list[torch.Tensor] = []
        self._hist_idx: list[tuple] = []  # per query: (batch offset, example indices or None: all)
        self._hist_m: list[torch.Tensor] = []  # per query: the margins of its rows
        self._hist_rows = 0
        self.truncated = False
        self.queries = 0

    def __getattr__(self, name):  # config(), name, eot... of the wrapped attack
        if name == "attack":
            raise AttributeError(name)
        return getattr(self.attack, name)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._x, self._y, self._last = x.detach(), y.detach(), None
        self._cur_best = x.detach().clone()
        with torch.no_grad():
            self._cur_margin = torch.full((len(x),), float("inf"), device=x.device)
        handle = self.model.register_forward_hook(self._on_forward)
        saved = self._watch_fused()
        try:
            adv = self.attack(x, y)
        finally:
            handle.remove()
            for name, previous in saved.items():  # what was there before (another wrapper, or the class's)
                if previous is None:
                    self.model.__dict__.pop(name, None)
                else:
                    setattr(self.model, name, previous)
        # a best point outside the eps-ball (an attack's unprojected internal query) is not a valid iterate
        d = (self._cur_best - x.detach()).flatten(1).float()
        outside = (d.abs().amax(1) if self.norm == "Linf" else d.norm(dim=1)) > self.eps + MATCH_TOL
        self._best.append(torch.where(outside.view(-1, *([1] * (x.dim() - 1))), x.detach(), self._cur_best).cpu())
        self._best_margin.append(self._cur_margin.masked_fill(outside, float("inf")).cpu())
        self._offset += len(x)
        self._x = self._y = None
        return adv

    def _watch_fused(self) -> dict:
        """Watch the model's fused EOT entry points too (``attacks.eot``: ``draw_logits`` gives one forward
        pass's output from a shared encoder pass, ``eot_logits`` n of them at once); they bypass ``forward``, so
        without this an EOT attack's iterates would go unseen and its indicators would silently read 0."""
        m = self.model
        names = {n: m.__dict__.get(n) for n in ("draw_logits", "eot_logits") if callable(getattr(m, n, None))}
        draw, eot = getattr(m, "draw_logits", None), getattr(m, "eot_logits", None)
        if callable(draw):

            def draw_logits(mu, sigma, x):
                out = draw(mu, sigma, x)
                self._on_forward(m, (x,), out)
                return out

            m.draw_logits = draw_logits
        if callable(eot):

            def eot_logits(x, n):
                outs = eot(x, n)
                for out in outs:  # each draw is one forward pass's output
                    self._on_forward(m, (x,), out)
                return outs

            m.eot_logits = eot_logits
        return names

    # ------------------------------------------------------------------ matching rows to examples
    def _match(self, q: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(row indices or None for every row, example indices) of the queried rows that lie in some
        example's eps-ball. The last matching is tried first: attacks query the same subset repeatedly."""
        x = self._x
        qf, xf = q.flatten(1), x.flatten(1)
        if qf.shape[1] != xf.shape[1]:
            return None, q.new_zeros(0, dtype=torch.long)
        for cached in (True, False):
            if cached:
                if self._last is None or len(self._last) != len(qf):
                    continue
                cand = self._last
            else:
                cols = torch.linspace(0, xf.shape[1] - 1, min(MATCH_COORDS, xf.shape[1]), device=q.device).long()
                cand = torch.cdist(qf[:, cols].float(), xf[:, cols].float(), p=float("inf")).argmin(1)
            d = (qf - xf[cand]).float()
            size = d.abs().amax(1) if self.norm == "Linf" else d.norm(dim=1)
            inside = size <= self.eps + MATCH_TOL
            if bool(inside.all()):
                self._last = cand
                return None, cand
            if not cached:
                rows = inside.nonzero().squeeze(1)
                return rows, cand[rows]
        raise AssertionError("unreachable")

    def _on_forward(self, module, inputs, out):
        if self._x is None or not inputs or not torch.is_tensor(inputs[0]) or out.dim() != 2:
            return
        with torch.no_grad():
            q = inputs[0].detach()
            if q.shape == self._x.shape:  # the whole batch in order (most iterative attacks): no matching
                # (the ball is checked once per batch, on the best points: see __call__)
                m = margins(out, self._y)
                better = m < self._cur_margin
                self._cur_margin = torch.minimum(self._cur_margin, m)
                self._cur_best = torch.where(
                    better.view(-1, *([1] * (q.dim() - 1))), q.to(self._cur_best.dtype), self._cur_best
                )
                self._record(None, m)
                return
            rows, ex = self._match(q)
            if not len(ex):
                return
            m = margins(out if rows is None else out[rows], self._y[ex])
            better = m < self._cur_margin[ex]
            self._cur_margin[ex] = torch.minimum(self._cur_margin[ex], m)
            src = q if rows is None else q[rows]
            self._cur_best[ex] = torch.where(
                better.view(-1, *([1] * (q.dim() - 1))), src.to(self._cur_best.dtype), self._cur_best[ex]
            )
            self._record(ex, m)

    def _record(self, ex: torch.Tensor | None, m: torch.Tensor) -> None:
        """Keep one query's margins (``ex`` None: the whole batch in order)."""
        self.queries += 1
        if self._hist_rows + len(m) > MAX_HISTORY_ROWS:
            self.truncated = True
            return
        self._hist_idx.append((self._offset, ex))
        self._hist_m.append(m)
        self._hist_rows += len(m)

    # ------------------------------------------------------------------------------- results
    @property
    def best(self) -> torch.Tensor:
        """Per example (all batches, call order): the visited point with the lowest margin (x if none)."""
        return torch.cat(self._best) if self._best else torch.zeros(0)

    @property
    def best_margin(self) -> torch.Tensor:
        return torch.cat(self._best_margin) if self._best_margin else torch.zeros(0)

    def loss_trace(self, points: int = TRACE_POINTS) -> list[float]:
        """The mean margin of the queried points (the attack's loss, lower is better), at most ``points``
        queries evenly spaced over the attack (all batches in order)."""
        q = len(self._hist_m)
        picks = range(q) if q <= points else torch.linspace(0, q - 1, points).round().long().tolist()
        out = []
        for i in picks:
            m = self._hist_m[i]
            m = m[torch.isfinite(m)]
            if len(m):
                out.append(round(float(m.mean()), 6))
        return out

    def still_improving(self, tail: float = 0.2, rel: float = 0.1, abs_tol: float = 1e-3) -> torch.Tensor:
        """Per example: whether its best margin so far was still falling over the last ``tail`` of its queries.

        It counts as still falling when the best margin dropped over those queries by more than
        ``abs_tol`` and by more than ``rel`` of its whole drop (first query to last). Restarts and
        sub-attacks that begin afresh do not count as progress unless they beat the best so far.
        Examples with fewer than two queries: False.
        """
        n = self._offset
        if not self._hist_idx:
            return torch.zeros(n, dtype=torch.bool)
        idx = torch.cat(
            [
                (torch.arange(len(v)) if ex is None else ex.cpu().long()) + off
                for (off, ex), v in zip(self._hist_idx, self._hist_m)
            ]
        )
        m = torch.cat([v.cpu() for v in self._hist_m]).double()
        order = torch.sort(idx, stable=True).indices  # per example, its queries in time order
        idx, m = idx[order], m[order]
        m = m.masked_fill(~torch.isfinite(m), float("nan"))
        lo, hi = (float(m.nan_to_num(0).min()), float(m.nan_to_num(0).max()))
        big = 2 * (hi - lo) + 1.0
        # a running minimum per example in one pass: later examples are shifted far below earlier ones
        shifted = m.nan_to_num(hi + big / 2) - idx.double() * big
        best = torch.cummin(shifted, 0).values + idx.double() * big
        counts = torch.bincount(idx, minlength=n)
        starts = torch.cumsum(counts, 0) - counts
        w = torch.clamp((tail * counts.double()).round().long(), min=1)
        ok = counts >= 2
        last = (starts + counts - 1).clamp(min=0, max=max(len(best) - 1, 0))
        prev = (starts + counts - 1 - w).clamp(min=0, max=max(len(best) - 1, 0))
        first = starts.clamp(max=max(len(best) - 1, 0))
        drop = best[prev] - best[last]
        total = best[first] - best[last]
        return ok & (drop > abs_tol) & (drop > rel * total.clamp(min=0))
