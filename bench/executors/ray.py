"""The Ray executor: a campaign as a graph of Ray tasks; this process is the driver and the only writer.

The graph, per model-seed (Ray resolves the dependencies and places the tasks; nothing here schedules):

    train unit (its stack, or itself) --> attack setup --> attack unit (one per (norm, eps) group) ... --> picture
                                                                       timing (last, one task at a time)

* **Train units** (``tasks.train_unit``): a stack of same-architecture model-seeds trained as one
  computation (``bench.train.stacked``), or one model-seed. ``--stack auto`` stacks on CUDA workers only: on
  CPU nodes separate units on separate cores beat one stack on one core. Each unit writes its members'
  model directories (weights, checkpoint, status, log) and its stack checkpoint.
* **Attack setup**: clean correctness and the model checks, once per model-seed.
* **Attack units**: one (norm, eps) group each (its cheap attacks, the cascade, the worst case); the groups
  of a norm that has a minimum-norm attack (CW runs once for every eps) form one unit.
* **Timing** runs after everything else, one task at a time, so no other task shares the node it measures.

Data travels through Ray's object store (put once: worker nodes need no copy of the data set); weights
through the run directory, which must be on storage every node shares (a retried training resumes from
its checkpoint there, and the run outlives the cluster); records, vectors and metrics come back to the
driver through the object store, and only the driver writes them. A task that raises or whose worker or
node dies is retried (``max_retries``); one that still fails is recorded with its error, never lost.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from ..errors import BenchError
from ..results import update_results
from ..timing import record_throughput, timing_pairs
from ..train.stage import CLEAN_KEYS, init_run, record_train, run_record, train_line
from . import books, tasks
from .work import Campaign, Execution

CPUS_PER_TASK = 1  # tiny MLPs: one thread each is fastest, and the cores run tasks side by side
GPU_SHARE = {"train": 0.25, "attack": 0.25, "environment": 0.01, "timing": 1.0}  # on CUDA only
MAX_RETRIES = 3


def local_runtime_env() -> dict:
    """For a Ray instance started here: workers import vib-bench from where this process does."""
    root = str(Path(__file__).resolve().parents[2])
    paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}


def error_text(e: BaseException) -> str:
    """One line for a task's final failure: the task's own exception, or what happened to its worker."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, BaseException):
        e = cause
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:300]


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_task: int = CPUS_PER_TASK, max_retries: int | None = None):
        self.address, self.cpus = address, cpus_per_task
        self.max_retries = MAX_RETRIES if max_retries is None else max_retries

    def describe(self) -> str:
        return f"Ray executor, cluster at {self.address}" if self.address else "Ray executor"

    def run(self, c: Campaign, log, detail) -> Execution:
        import ray

        started = not ray.is_initialized()
        if started:
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=False)
                else:
                    ray.init(log_to_driver=False, include_dashboard=False, runtime_env=local_runtime_env())
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise BenchError(
                    f"--ray-address {self.address or '(local)'}: cannot connect to Ray "
                    f"({' '.join(str(e).split())[:200]})"
                ) from None
        try:
            return _Driver(self, c, log, detail).run()
        finally:
            if started:
                ray.shutdown()


class _Driver:
    def __init__(self, ex: RayExecutor, c: Campaign, log, detail):
        import ray

        self.ray, self.ex, self.c, self.log, self.detail = ray, ex, c, log, detail
        self.out = Path(c.out).resolve()  # workers do not share this process's working directory
        self.device = torch.device(c.device)
        self.pending: dict = {}  # ObjectRef -> (handler, key)
        self.train_refs: dict = {}
        self.train_failed: set = set()
        self.books: dict = {}
        self.train_left = 0
        self.failures: list[tuple[str, int, str, str]] = []
        self.common = (self.device, list(c.plugins))

    # ------------------------------------------------------------------------------------ tasks
    def submit(self, fn, kind: str, handler, key, *args):
        gpus = GPU_SHARE[kind] if self.device.type == "cuda" else 0
        task = self.ray.remote(fn).options(
            num_cpus=self.ex.cpus,
            num_gpus=gpus,
            max_retries=self.ex.max_retries,
            retry_exceptions=True,
            name=f"vib-bench {kind} {key}",
        )
        ref = task.remote(*args)
        self.pending[ref] = (handler, key)
        return ref

    def settle(self, ref) -> None:
        """Hand a finished task's value (or its final error) to its handler."""
        if ref not in self.pending:
            return
        handler, key = self.pending.pop(ref)
        try:
            value, error = self.ray.get(ref), None
        except self.ray.exceptions.RayError as e:
            value, error = None, error_text(e)
        handler(key, value, error)

    def wait_all(self) -> None:
        while self.pending:
            ready, _ = self.ray.wait(list(self.pending), num_returns=1)
            for ref in ready:
                self.settle(ref)

    # ------------------------------------------------------------------------------------ the run
    def run(self) -> Execution:
        from ..runs import failed_models, open_run

        c, ray = self.c, self.ray
        res = init_run(
            self.out, run_record(c.dataset, c.cfg, c.per_model, c.seeds, c.plugins, c.suite), c.resume, self.device
        )
        order = [(m.name, int(s)) for m in res.models() for s in m.seed_ids()] + [
            (m, s) for m in c.names for s in c.seeds
        ]
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        total = ray.cluster_resources()
        self.log(
            f"[ray] {len(nodes)} node(s), {total.get('CPU', 0):g} CPU(s), {total.get('GPU', 0):g} GPU(s); "
            f"{self.ex.cpus} CPU per task, up to {self.ex.max_retries} retries"
        )
        self.executor_info = {
            "name": "ray",
            "ray": ray.__version__,
            "address": self.ex.address or "local",
            "cpus_per_task": self.ex.cpus,
            "max_retries": self.ex.max_retries,
            "nodes": [
                {
                    "host": n.get("NodeManagerHostname"),
                    "cpus": n["Resources"].get("CPU", 0),
                    "gpus": n["Resources"].get("GPU", 0),
                }
                for n in nodes
            ],
        }
        to_train = self.plan_training(res)
        if c.attack_opts is not None:
            self.prepare_attacks(res, [(m, s) for m, s, _, _ in to_train])  # refuses before any task runs
        try:
            self.submit(
                tasks.worker_environment,
                "environment",
                self.on_environment,
                "env",
                str(self.out),
                self.device,
                c.plugins,
                self.ex.cpus,
            )
            self.submit_training(to_train)
            if c.attack_opts is not None:
                self.submit_attacks()
            self.wait_all()
            update_results(self.out, lambda r: r.reorder(order))
            if len(failed_models(open_run(self.out), c.names, c.seeds)) == len(c.names) * len(c.seeds):
                return Execution(trained_any=False, failures=self.failures)
            t2 = time.perf_counter()
            # one at a time, so that nothing else of the campaign shares the node it measures
            for name, seed in timing_pairs(self.out, open_run(self.out), log=self.detail):
                ds = c.dataset
                self.submit(
                    tasks.time_model,
                    "timing",
                    self.on_timing,
                    (name, seed),
                    str(self.out),
                    name,
                    seed,
                    ds.in_shape,
                    ds.num_classes,
                    c.timing,
                    self.device,
                    c.plugins,
                    self.ex.cpus,
                )
                self.wait_all()
            self.log(f"[timing] done in {time.perf_counter() - t2:.0f} s")
        except KeyboardInterrupt:
            for ref in list(self.pending):
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - already finished or gone
                    pass
            books.mark_interrupted(self.out, self.train_refs)
            raise
        return Execution(failures=self.failures)

    def on_environment(self, _, env, error):
        if env is None:
            self.log(f"[ray] could not record the workers' environment: {error}")
            return
        env = {**env, "executor": self.executor_info}

        def write(r):
            r.set_environment("train", env)
            if self.c.attack_opts is not None:
                r.set_environment("attack", env)
                r.add_plugins(self.c.attack_opts.plugins)

        update_results(self.out, write)

    # ---------------------------------------------------------------------------------- training
    def plan_training(self, res) -> list[tuple[str, int, dict, bool]]:
        """Record the model-seeds that are trained and evaluated already; return the others as train members."""
        from ..rundir import has_weights, model_dir, read_status

        members = []
        for name in self.c.names:
            for seed in self.c.seeds:
                status = read_status(model_dir(self.out, name, seed)) or {}
                entry = res.seed(name, seed)
                evaluate = entry is None or not CLEAN_KEYS <= set(entry.clean)
                if status.get("state") == "done" and has_weights(self.out, name, seed) and not evaluate:
                    r = record_train(self.out, name, seed, {**status, "skipped": True}, None)
                    self.detail(train_line(r, name, seed, {**status, "skipped": True}))
                else:
                    members.append((name, seed, res.model_overrides[name], evaluate))
        return members

    def stack_mode(self) -> str:
        """``--stack`` for Ray units: ``auto`` stacks on CUDA only (on CPU, units run side by side on the cores)."""
        return self.c.stack if self.c.stack != "auto" or self.device.type == "cuda" else "off"

    def training_units(self, members) -> list[tuple[list, bool]]:
        """The train members grouped into units ``(members, stacked)`` by the stacked trainer's own plan."""
        from ..train.stacked import planned_jobs

        c = self.c
        by_pair = {member[:2]: member for member in members}
        overrides = {name: ov for name, _, ov, _ in members}
        wanted = {s for _, s, _, _ in members}
        seeds = [s for s in c.seeds if s in wanted]  # the local executor's order: the same stack ids
        units, placed = [], set()
        for job in planned_jobs(self.out, c.dataset, overrides, seeds, c.cfg, resume=c.resume, mode=self.stack_mode()):
            unit = [by_pair[p] for p in job.members if p in by_pair and p not in placed]
            placed.update(m[:2] for m in unit)
            if job.stacked and len(unit) == len(job.members):
                units.append((unit, True))
            else:  # one model-seed per unit, so the cores train them side by side
                units += [([m], False) for m in unit]
        return units + [([m], False) for m in members if m[:2] not in placed]

    def submit_training(self, members) -> None:
        c = self.c
        self.t_train = time.perf_counter()
        data = self.ray.put(c.dataset) if members else None
        units = self.training_units(members)
        stacks = [u for u, stacked in units if stacked]
        if stacks:
            self.log(
                f"[ray] {len(units)} train unit(s), {len(stacks)} of them stack(s) of "
                + ", ".join(str(len(u)) for u in stacks)
                + " model-seeds"
            )
        for unit, stacked in units:
            self.train_left += 1
            pairs = tuple((m, s) for m, s, _, _ in unit)
            ref = self.submit(
                tasks.train_unit,
                "train",
                self.on_trained,
                pairs,
                str(self.out),
                unit,
                data,
                c.cfg,
                self.device,
                c.plugins,
                self.ex.cpus,
                stacked,
                self.stack_mode() == "on",
            )
            for pair in pairs:
                self.train_refs[pair] = ref
        if not self.train_left:
            self.train_done()

    def train_done(self) -> None:
        c = self.c
        failed = [(m, s) for m in c.names for s in c.seeds if (m, s) in self.train_failed]
        self.log(
            f"[train] {len(c.names) * len(c.seeds)} model-seed(s) in {time.perf_counter() - self.t_train:.0f} s"
            + (f"; {len(failed)} failed: " + ", ".join(f"{m} seed {s}" for m, s in failed) if failed else "")
        )

    def on_trained(self, members, results, error):
        if results is None:  # the task failed for good: each member is recorded as failed, with the error
            results = [
                {
                    "name": m,
                    "seed": s,
                    "clean": None,
                    "status": books.failed_status(self.out, m, s, self.c.cfg.epochs, f"task failed: {error}"),
                }
                for m, s in members
            ]
        for r in results:
            if r["status"]["state"] != "done":
                self.train_failed.add((r["name"], r["seed"]))
            res = record_train(self.out, r["name"], r["seed"], r["status"], r["clean"])
            self.detail(train_line(res, r["name"], r["seed"], r["status"]))
        self.train_left -= 1
        if self.train_left == 0:
            self.train_done()

    # ----------------------------------------------------------------------------------- attacks
    def prepare_attacks(self, res, training: list[tuple[str, int]]) -> None:
        """The attacked model-seeds (trained before, or training now) and their books; refuses what cannot resume."""
        import copy

        from .. import protocol
        from ..attack.group import groups, units
        from ..attack.stage import check_resumable
        from ..rundir import has_weights

        c = self.c
        opts = copy.copy(c.attack_opts)
        opts.device, opts.progress, opts.models = self.device, False, list(c.names)
        self.opts = opts
        x, y = protocol.select_examples(*c.dataset.split("test"), opts.n_examples)
        if float(x.min()) < 0 or float(x.max()) > 1:
            raise BenchError(f"dataset {c.dataset.name}: pixels are outside [0, 1]; attacks assume [0, 1] images")
        self.x_y = (x, y)
        pairs = [
            (m.name, int(s))
            for m in res.models()
            if m.name in c.names
            for s in m.seed_ids()
            if has_weights(self.out, m.name, int(s))
        ]
        pairs += [p for p in training if p not in pairs]
        spec = [[(g.norm, g.eps) for g in u] for u in units(groups(c.attack_plan, opts.cascade, True))]
        for name, seed in pairs:
            entry = res.seed(name, seed)
            records = entry.records() if entry else []
            setup, checks = (entry.attack_setup, entry.attack_checks) if entry else ({}, {})
            check_resumable(self.out, name, seed, bool(records), setup, len(x), opts, checks)
            self.books[(name, seed)] = books.AttackBook(self.out, name, seed, records, spec)

    def submit_attacks(self) -> None:
        c, opts = self.c, self.opts
        self.xy = xy = self.ray.put(self.x_y)
        self.t_attack, self.attack_left = time.perf_counter(), len(self.books)
        for (name, seed), book in self.books.items():
            book.setup_ref = self.submit(
                tasks.attack_setup,
                "attack",
                self.on_setup,
                (name, seed),
                str(self.out),
                name,
                seed,
                xy,
                self.device,
                c.plugins,
                self.ex.cpus,
                self.train_refs.get((name, seed)),
            )
            for i, unit in enumerate(book.units):
                recs, vecs = book.unit_input(i)
                self.submit(
                    tasks.attack_unit,
                    "attack",
                    self.on_unit,
                    (name, seed, i),
                    str(self.out),
                    name,
                    seed,
                    xy,
                    book.setup_ref,
                    unit,
                    opts,
                    c.attack_plan,
                    recs,
                    vecs,
                    c.plugins,
                    self.ex.cpus,
                )

    def on_setup(self, key, result, error):
        from ..attack.group import model_line, skipped_lines

        if key in self.train_refs:
            self.settle(self.train_refs[key])  # a failed training explains a failed setup
        book = self.books[key]
        if error is not None:
            if key not in self.train_failed:
                self.task_failed(book, "attack setup", error)
            book.skipped = True
            return
        book.start(result)
        if not book.skipped:
            self.detail(model_line(key[0], key[1], book.setup, book.checks))
            for line in skipped_lines(self.c.attack_plan.attacks, book.checks["randomised"]):
                self.detail(line)

    def on_unit(self, key, puts, error):
        name, seed, i = key
        book = self.books[(name, seed)]
        self.settle(book.setup_ref)
        if error is not None and not book.skipped:
            unit = book.units[i]
            what = f"attack {unit[0][0]} eps " + ",".join(f"{e:g}" for _, e in unit)
            self.task_failed(book, what, error)
        elif puts is not None:
            book.apply(i, puts, self.detail)
        book.left -= 1
        if book.left == 0:
            self.finish_book(book)

    def task_failed(self, book, what: str, error: str) -> None:
        self.failures.append((book.name, book.seed, what, error))
        self.log(f"{book.name} seed {book.seed}: {what} FAILED after {self.ex.max_retries} retries: {error}")
        book.fail(what, error)

    def finish_book(self, book) -> None:
        from ..attack.summary import summary_lines

        records = book.finish()
        self.attack_left -= 1
        if records is not None:
            for line in summary_lines(book.name, book.seed, records, book.checks, book.setup):
                self.detail(line)
            if self.opts.grid and records:
                self.submit(
                    tasks.attack_grid,
                    "attack",
                    self.on_grid,
                    (book.name, book.seed),
                    str(self.out),
                    book.name,
                    book.seed,
                    self.xy,
                    [r.raw for r in records],
                    self.opts,
                    self.c.plugins,
                    self.ex.cpus,
                )
        if self.attack_left == 0:
            cells = sum(len([r for r in b.records if not r.is_worst_case]) for b in self.books.values())
            self.log(
                f"[attack] {len(self.books)} model-seed(s), {cells} cells on record, "
                f"in {time.perf_counter() - self.t_attack:.0f} s"
            )

    def on_grid(self, key, result, error):
        from ..io import atomic_write_bytes
        from ..rundir import figure_path

        if error is not None:
            self.task_failed(self.books[key], "attack picture", error)
        elif result is not None:
            path = figure_path(self.out, result[0])
            atomic_write_bytes(path, result[1])
            self.detail(f"  picture: {path}")

    # ------------------------------------------------------------------------------------ timing
    def on_timing(self, key, tp, error):
        name, seed = key
        if error is not None:
            self.failures.append((name, seed, "timing", error))
        self.detail(record_throughput(self.out, name, seed, tp, error))
