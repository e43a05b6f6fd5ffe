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

TRACE_POINTS = 20          # points kept of the mean best-so-far margin over queries
MAX_HISTORY_ROWS = 20_000_000   # per-query margins kept at most (beyond: the history is truncated)
MATCH_TOL = 1e-5           # slack for "inside the eps ball" (float32 arithmetic in the attacks)
MATCH_COORDS = 64          # coordinates compared to find the candidate example of a row


def margins(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log p(label) - max log p(other) of every row (negative: misclassified), for logits or log-probs."""
    logp = torch.log_softmax(out.detach().float(), dim=-1)
    real = logp.gather(1, y[:, None]).squeeze(1)
    other = logp.scatter(1, y[:, None], float("-inf")).amax(1)
    return real - other


class TracedAttack:
    """``attack`` with every forward pass of ``model`` watched (see the module docstring).

    Call it like the attack, batch after batch; ``offset`` counts the examples seen, so the per-example
    results (:attr:`best`, :meth:`still_improving`) are indexed over all batches in call order.
    """

    def __init__(self, attack, model: torch.nn.Module, norm: str, eps: float):
        self.attack, self.model, self.norm, self.eps = attack, model, norm, float(eps)
        self._x = self._y = None
        self._offset = 0
        self._best: list[torch.Tensor] = []          # per batch: the lowest-margin point
        self._best_margin: list[torch.Tensor] = []
        self._hist_idx: list[torch.Tensor] = []      # per query: global example indices (int32, CPU)
        self._hist_m: list[torch.Tensor] = []        # per query: their margins (float32, CPU)
        self._hist_rows = 0
        self.truncated = False
        self.trace: list[float] = []                 # per query: mean best-so-far margin of the batch
        self.queries = 0

    def __getattr__(self, name):   # config(), name, eot... of the wrapped attack
        if name == "attack":
            raise AttributeError(name)
        return getattr(self.attack, name)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._x, self._y = x.detach(), y.detach()
        self._cur_best = x.detach().clone()
        with torch.no_grad():
            self._cur_margin = torch.full((len(x),), float("inf"), device=x.device)
        handle = self.model.register_forward_hook(self._on_forward)
        try:
            adv = self.attack(x, y)
        finally:
            handle.remove()
        self._best.append(self._cur_best.cpu())
        self._best_margin.append(self._cur_margin.cpu())
        self._offset += len(x)
        self._x = self._y = None
        return adv

    # ------------------------------------------------------------------ matching rows to examples
    def _match(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row indices, example indices) of the queried rows that lie in some example's eps-ball."""
        x = self._x
        qf, xf = q.flatten(1), x.flatten(1)
        if qf.shape[1] != xf.shape[1]:
            return q.new_zeros(0, dtype=torch.long), q.new_zeros(0, dtype=torch.long)
        if len(qf) == len(xf):
            cand = torch.arange(len(xf), device=q.device)
        else:
            cols = torch.linspace(0, xf.shape[1] - 1, min(MATCH_COORDS, xf.shape[1]), device=q.device).long()
            cand = torch.cdist(qf[:, cols].float(), xf[:, cols].float(), p=float("inf")).argmin(1)
        d = (qf - xf[cand]).float()
        size = d.abs().amax(1) if self.norm == "Linf" else d.norm(dim=1)
        inside = size <= self.eps + MATCH_TOL
        rows = inside.nonzero().squeeze(1)
        return rows, cand[rows]

    def _on_forward(self, module, inputs, out):
        if self._x is None or not inputs or not torch.is_tensor(inputs[0]) or out.dim() != 2:
            return
        with torch.no_grad():
            q = inputs[0].detach()
            rows, ex = self._match(q)
            if not len(rows):
                return
            m = margins(out[rows], self._y[ex])
            # the lowest margin per example among this query's rows (a row per example in practice)
            better = m < self._cur_margin[ex]
            if bool(better.any()):
                r, e = rows[better], ex[better]
                self._cur_margin[e] = m[better]
                self._cur_best[e] = q[r].to(self._cur_best.dtype).view(-1, *self._cur_best.shape[1:])
            self.queries += 1
            finite = torch.isfinite(self._cur_margin)
            if bool(finite.any()):
                self.trace.append(float(self._cur_margin[finite].mean()))
            if self._hist_rows + len(ex) <= MAX_HISTORY_ROWS:
                self._hist_idx.append((ex + self._offset).to(torch.int32).cpu())
                self._hist_m.append(m.cpu())
                self._hist_rows += len(ex)
            else:
                self.truncated = True

    # ------------------------------------------------------------------------------- results
    @property
    def best(self) -> torch.Tensor:
        """Per example (all batches, call order): the visited point with the lowest margin (x if none)."""
        return torch.cat(self._best) if self._best else torch.zeros(0)

    @property
    def best_margin(self) -> torch.Tensor:
        return torch.cat(self._best_margin) if self._best_margin else torch.zeros(0)

    def loss_trace(self, points: int = TRACE_POINTS) -> list[float]:
        """At most ``points`` values of the mean best-so-far margin, evenly spaced over the queries."""
        t = self.trace
        if len(t) <= points:
            return [round(v, 6) for v in t]
        idx = torch.linspace(0, len(t) - 1, points).round().long().tolist()
        return [round(t[i], 6) for i in idx]

    def still_improving(self, tail: float = 0.2, rel: float = 0.1, abs_tol: float = 1e-3) -> torch.Tensor:
        """Per example: whether its best margin so far was still falling over the last ``tail`` of its queries.

        It counts as still falling when the best margin dropped over those queries by more than
        ``abs_tol`` and by more than ``rel`` of its whole drop (first query to last). Restarts and
        sub-attacks that begin afresh do not count as progress unless they beat the best so far.
        Examples with fewer than two queries: False.
        """
        n = self._offset
        out = torch.zeros(n, dtype=torch.bool)
        if not self._hist_idx:
            return out
        idx = torch.cat(self._hist_idx).long()
        m = torch.cat(self._hist_m)
        order = torch.sort(idx, stable=True).indices     # per example, its queries in time order
        idx, m = idx[order], m[order]
        counts = torch.bincount(idx, minlength=n)
        starts = (torch.cumsum(counts, 0) - counts).tolist()
        for i in (counts >= 2).nonzero().squeeze(1).tolist():
            k = int(counts[i])
            best = torch.cummin(m[starts[i]:starts[i] + k], 0).values
            w = max(1, int(round(tail * k)))
            drop, total = float(best[k - 1 - w] - best[k - 1]), float(best[0] - best[k - 1])
            out[i] = drop > abs_tol and drop > rel * total
        return out
