"""The claims stage: measure what is missing, judge every claim, record the table and its figures.

``run_claims(ClaimsOptions)`` is what ``vib-bench claims RUN_DIR`` calls. Measurements are saved
after every attack cell (in the results file under each (model, seed), with per-example vectors
beside it), so an interrupted check resumes where it stopped; a cell is reused only when the setup
and the attack's budget are unchanged (``fresh`` recomputes everything).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import torch

from .. import protocol, rundir
from ..errors import BenchError
from ..io import atomic_write_text
from ..results import CLEAN_KEY as TEST_CLEAN_KEY
from ..results import Results, update_results
from .measure import cell_key, first_of_class, is_randomised, measure_model, measure_zeros, plan_cells
from .options import ClaimsOptions
from .store import save_zeros_images
from .verdicts import ModelData, judge_claims


def select_models(res: Results, run_dir: Path, opts: ClaimsOptions) -> list[tuple[str, int]]:
    """(model, seed) pairs to check: the baseline and the VIB models (or ``opts.models``), trained
    (measured, with ``judge_only``)."""
    import registry

    from ..runs import trained_models

    if opts.judge_only:  # what was measured: a committed run without its weights can be judged again
        pairs = [
            (m.name, int(s.seed_id))
            for m in res.models()
            for s in m.seeds()
            if s.claims.get("cells") and (not opts.models or registry.matches(m.name, opts.models))
        ]
    else:
        pairs = trained_models(run_dir, res, opts.models)
    if opts.models is None:
        pairs = [(m, s) for m, s in pairs if m == opts.baseline or res.model(m).vib_beta is not None]
    if not any(m == opts.baseline for m, _ in pairs):
        measured = any(s.claims.get("cells") for m in res.models() for s in m.seeds())
        if measured and not opts.judge_only:  # e.g. a committed run, published without its weights
            raise BenchError(
                f"{run_dir}: no trained weights for the baseline {opts.baseline!r} here, but the run "
                "holds measured claims: pass --judge-only to judge them again without weights"
            )
        raise BenchError(
            f"{run_dir}: the baseline {opts.baseline!r} is not among the "
            f"{'measured' if opts.judge_only else 'trained'} models checked (train it, or pass --baseline)"
        )
    if not any(m != opts.baseline for m, _ in pairs):
        raise BenchError(f"{run_dir}: no VIB model to compare with the baseline (train some vib_beta* models)")
    return pairs


def _load_done(run_dir, res: Results, name: str, seed: int, opts: ClaimsOptions, randomised: bool):
    """The finished cells of one (model, seed) that the current setup can reuse, and the stored record."""
    from attacks import get_spec

    stored = res.seed(name, seed).claims if res.seed(name, seed) else {}
    if opts.fresh or not stored:
        return {}, None, {}
    if stored.get("setup") != opts.setup():
        raise BenchError(
            f"{run_dir}: the claims of {name} seed {seed} were measured with another setup "
            f"({stored.get('setup')}); pass --fresh to measure again"
        )
    vectors = rundir.load_per_example(run_dir, name, seed)
    done = {}
    for rec in stored.get("cells", []):
        want = {**get_spec(rec["attack"]).budget, **opts.budget(rec["attack"], randomised)}
        keys_ok = all(k in vectors for k in _vector_keys(rec, opts))
        if rec.get("config", {}).get("budget") == want and keys_ok:
            done[rec["key"]] = rec
    zeros = stored.get("zeros")
    return done, zeros, stored


def _vector_keys(rec: dict, opts: ClaimsOptions) -> list[str]:
    from .measure import vector_key

    if rec["eps"] is None:
        return [vector_key(rec["attack"], None), vector_key(rec["attack"], opts.eps_l2)]
    return [vector_key(rec["attack"], rec["eps"])]


def measure_run(run_dir: Path, res: Results, pairs, opts: ClaimsOptions, log=print) -> None:
    """Measure every missing cell of every (model, seed), saving as it goes."""
    from ..runs import load_run_dataset
    from ..train.weights import load_trained

    device = torch.device(opts.device)
    ds = load_run_dataset(res, opts.data_dir)
    xt, yt = ds.split("test")
    x, y = protocol.select_examples(xt, yt, opts.n_examples)
    xz, idx = first_of_class(xt, yt, opts.zeros_label, opts.zeros_n)
    if opts.zeros_n and len(idx) < opts.zeros_n:
        raise BenchError(
            f"the test split has only {len(idx)} examples of class {opts.zeros_label} (zeros_n = {opts.zeros_n})"
        )
    log(
        f"claims: {len(pairs)} model-seed(s) on the first {len(x)} {ds.name} test images, L2 budget {opts.eps_l2:g}, "
        f"L-inf {', '.join(f'{e:g}' for e in opts.eps_linf)}; first {opts.zeros_n} test images of class "
        f"{opts.zeros_label} towards {opts.zeros_target}"
    )
    for name, seed in pairs:
        model = load_trained(run_dir, name, seed, device)
        randomised = is_randomised(model, x, device)
        done, zeros, stored = _load_done(run_dir, res, name, seed, opts, randomised)
        todo = [c for c in plan_cells(opts, randomised) if cell_key(c[0], c[1], c[2]) not in done]
        log(
            f"{name} seed {seed}: {'randomised' if randomised else 'deterministic'}; "
            f"{len(done)} cell(s) already measured, {len(todo)} to run"
        )
        record = {
            "setup": opts.setup(),
            "cells": list(done.values()),
            "zeros": zeros,
            "examples": {"n": len(x), "zeros_index": idx.tolist()},
        }

        def persist(rec, vectors, name=name, seed=seed, record=record):
            record["cells"] = [c for c in record["cells"] if c["key"] != rec["key"]] + [rec]
            for key, vec in vectors.items():
                rundir.save_per_example(run_dir, name, seed, key, vec)
            update_results(run_dir, lambda r: r.seed(name, seed, create=True).set_claims(dict(record)))

        measure_model(model, x, y, opts, seed, device=device, done=done, on_cell=persist, log=log)
        if opts.zeros_n and zeros is None:
            zrec, images = measure_zeros(model, xz, opts, seed, device=device)
            record["zeros"] = zrec
            save_zeros_images(run_dir, name, seed, {"clean": xz, **images})
            update_results(
                run_dir, lambda r, name=name, seed=seed: r.seed(name, seed, create=True).set_claims(dict(record))
            )
            z = zrec["paper"]
            log(
                f"  first zeros -> {opts.zeros_target}: CW fooled {sum(z['success'])}/{len(z['success'])}, strongest "
                f"{sum(zrec['strongest']['success'])}/{len(z['success'])}"
            )
        model.cpu()


def collect(res: Results, pairs) -> dict[str, ModelData]:
    """The stored measurements of the checked (model, seed)s, as the verdicts read them."""
    out: dict[str, ModelData] = {}
    for name, seed in pairs:
        entry = res.seed(name, seed)
        claims = entry.claims if entry else {}
        m = out.setdefault(name, ModelData(name, res.model(name).vib_beta))
        vectors = entry.per_example() if entry else {}
        if TEST_CLEAN_KEY in vectors:
            m.test_clean[seed] = vectors[TEST_CLEAN_KEY]
        if claims.get("cells"):
            m.vectors[seed] = {k: v for k, v in vectors.items() if k.startswith("claims:")}
            m.cells[seed] = claims["cells"]
        if claims.get("zeros"):
            m.zeros[seed] = claims["zeros"]
    return out


def run_claims(opts: ClaimsOptions, log=print) -> list[dict]:
    """``vib-bench claims``: measure (unless ``judge_only``), judge, record; returns the rows."""
    from ..env import environment
    from ..runs import open_run
    from .figures import claims_figures
    from .render import claims_markdown

    run_dir = rundir.require_run_dir(opts.run_dir)
    opts.validate()
    res = open_run(run_dir)
    pairs = select_models(res, run_dir, opts)
    if not opts.judge_only:
        update_results(run_dir, lambda r: r.set_environment("claims", environment(opts.device)))
        measure_run(run_dir, Results.load(run_dir), pairs, opts, log=log)
    res = Results.load(run_dir)
    data = collect(res, pairs)
    if not any(m.vectors for m in data.values()):
        raise BenchError(
            f"{run_dir}: no claims measurements yet (run `vib-bench claims {run_dir}` without --judge-only)"
        )
    rows = judge_claims(
        data,
        baseline=opts.baseline,
        eps_l2=opts.eps_l2,
        eps_linf=list(opts.eps_linf),
        alpha=opts.alpha,
        broad_min=opts.broad_min,
    )
    res.set_claims(
        {
            "setup": {
                **opts.setup(),
                "baseline": opts.baseline,
                "alpha": opts.alpha,
                "broad_min": opts.broad_min,
                "models": sorted({m for m, _ in pairs}),
                "seeds": sorted({s for _, s in pairs}),
            },
            "rows": rows,
            "recorded_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
    )
    res.save()
    atomic_write_text(rundir.claims_path(run_dir), claims_markdown(res))
    for path in claims_figures(run_dir, res, data, opts):
        log(f"figure: {path}")
    return rows


def options_for_run(run_dir, **overrides) -> ClaimsOptions:
    """Options for a run: its suite's ``[claims]`` table (if it was made by a suite) under ``overrides``."""
    res = Results.load(rundir.require_run_dir(run_dir))
    return ClaimsOptions.from_suite(run_dir, res.suite.get("claims") or {}, **overrides)


def check_models(
    models: dict, x: torch.Tensor, y: torch.Tensor, opts: ClaimsOptions, *, device="cpu", log=print
) -> list[dict]:
    """The claims check on models held in memory (no run directory): ``models`` maps a name to
    ``(model, beta)`` with beta None for deterministic models. The zeros are the first of ``x``."""
    data = {}
    xz, _ = first_of_class(x, y, opts.zeros_label, opts.zeros_n)
    for name, (model, beta) in models.items():
        records, vectors = measure_model(model, x, y, opts, 0, device=device, log=log)
        m = data[name] = ModelData(name, beta)
        m.vectors[0] = {k: v.cpu().numpy() for k, v in vectors.items()}
        m.cells[0] = records
        if opts.zeros_n and len(xz):
            m.zeros[0], _ = measure_zeros(model, xz, opts, 0, device=device)
    return judge_claims(
        data,
        baseline=opts.baseline,
        eps_l2=opts.eps_l2,
        eps_linf=list(opts.eps_linf),
        alpha=opts.alpha,
        broad_min=opts.broad_min,
    )
