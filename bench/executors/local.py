"""The in-process executor (the default): train, attack, then time, one model-seed after another."""

from __future__ import annotations

import time

from .work import Campaign, Execution


class LocalExecutor:
    name = "local"

    def describe(self) -> str:
        return "in this process"

    def run(self, c: Campaign, log, detail) -> Execution:
        from ..attack import attack_run
        from ..runs import failed_models, open_run
        from ..timing import time_run
        from ..train.stage import train_run

        t0 = time.perf_counter()
        train_run(
            c.out,
            c.dataset,
            c.per_model,
            c.seeds,
            c.cfg,
            plugin_paths=c.plugins,
            device=c.device,
            resume=c.resume,
            progress=c.progress,
            log=detail,
            suite=c.suite,
            stack=c.stack,
        )
        failed = failed_models(open_run(c.out), c.names, c.seeds)
        log(
            f"[train] {len(c.names) * len(c.seeds)} model-seed(s) in {time.perf_counter() - t0:.0f} s"
            + (f"; {len(failed)} failed: " + ", ".join(f"{m} seed {s}" for m, s in failed) if failed else "")
        )
        if len(failed) == len(c.names) * len(c.seeds):  # nothing trained: nothing to attack or time
            return Execution(trained_any=False)

        if c.attack_opts is not None:
            t1 = time.perf_counter()
            c.attack_opts.models = list(c.names)
            results = attack_run(c.attack_opts, log=detail)
            cells = sum(len([r for r in res.records if not r.is_worst_case]) for res in results)
            log(f"[attack] {len(results)} model-seed(s), {cells} cells on record, in {time.perf_counter() - t1:.0f} s")

        t2 = time.perf_counter()
        time_run(c.out, c.timing, device=c.device, log=detail)
        log(f"[timing] done in {time.perf_counter() - t2:.0f} s")
        return Execution()
