"""Suites: a whole benchmark campaign as data, run by ``vib-bench run --suite NAME|FILE``.

A suite is a TOML file (the shipped ones live in ``bench/suites/``): data set, models, seeds,
training recipe, model overrides, attacks and eps grids, number of attacked examples, timing
settings. ``run`` trains, evaluates, attacks, times and writes the leaderboard into one run
directory; with ``--resume`` it picks up where it stopped and never redoes finished work.
"""

from __future__ import annotations

import time
from pathlib import Path

from .errors import BenchError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SUITE_DIR = Path(__file__).resolve().parent / "suites"
SECTIONS = {
    "": {"name", "description", "dataset", "models", "seeds", "train", "overrides", "attack", "timing", "info"},
    "train": {"epochs", "lr", "batch_size", "train_split"},
    "attack": {"attacks", "eps", "eps_l2", "n_examples", "batch_size", "eot_iter", "set"},
    "timing": {"batch_sizes", "min_run_time", "train_batch"},
}


def list_suites() -> list[str]:
    return sorted(p.stem for p in SUITE_DIR.glob("*.toml"))


def load_suite(name_or_path: str) -> dict:
    """A shipped suite by name, or a user's TOML file by path."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.is_file()):
        if name_or_path not in list_suites():
            raise BenchError(f"unknown suite {name_or_path!r} (shipped: {', '.join(list_suites())}; or a .toml file)")
        path = SUITE_DIR / f"{name_or_path}.toml"
    try:
        suite = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{path}: not a valid suite file ({e})") from None
    for section, allowed in SECTIONS.items():
        table = suite.get(section, {}) if section else suite
        if not isinstance(table, dict):
            raise BenchError(f"{path}: [{section}] must be a table")
        unknown = set(table) - allowed
        if unknown:
            raise BenchError(f"{path}: unknown key {sorted(unknown)[0]!r} in [{section or 'top level'}]")
    for key in ("dataset", "models"):
        if key not in suite:
            raise BenchError(f"{path}: missing required key {key!r}")
    suite.setdefault("name", path.stem)
    suite["path"] = str(path)
    return suite


def suite_overrides(suite: dict, names: list[str], dataset) -> dict[str, dict]:
    """``[overrides]`` keys go to every model that takes them; ``[overrides."NAME"]`` tables to one model."""
    from .train import build_model, overrides_per_model

    table = suite.get("overrides", {})
    shared = {k: v for k, v in table.items() if not isinstance(v, dict)}
    specific = {k: v for k, v in table.items() if isinstance(v, dict)}
    unknown = sorted(set(specific) - set(names))
    if unknown:
        raise BenchError(f"suite {suite['name']}: [overrides.{unknown[0]!r}] names a model the suite does not run")
    per_model = overrides_per_model(names, shared, dataset.in_shape, dataset.num_classes)
    for name, ov in specific.items():
        per_model[name] = {**per_model[name], **ov}
        build_model(name, per_model[name], dataset.in_shape, dataset.num_classes)  # fail fast on bad values
    return per_model


def run_suite(suite: dict, out: Path, *, device, data_dir=None, plugin_paths=(), resume=False, progress=None,
              log=print) -> int:
    """Train, evaluate, attack, time, then write the leaderboard. Returns the exit status."""
    from models import list_models

    from . import plugins
    from .data import load_dataset
    from .runs import failed_models, open_run, train_run
    from .train import TrainConfig

    out = Path(out)
    plugins.load_plugins(plugin_paths)
    plugins.load_entry_points()
    names = list_models(suite["models"])
    seeds = [int(s) for s in suite.get("seeds", [0])]
    cfg = TrainConfig.from_dict({"epochs": 20, **suite.get("train", {})}).validate()
    dataset = load_dataset(suite["dataset"], data_dir)
    per_model = suite_overrides(suite, names, dataset)
    t0 = time.perf_counter()
    log(f"suite {suite['name']}: {len(names)} models x {len(seeds)} seed(s) on {dataset.name}, "
        f"{cfg.epochs} epochs, on {device} -> {out}")
    suite_record = {k: v for k, v in suite.items() if k != "path"}
    data = train_run(out, dataset, per_model, seeds, cfg, plugin_paths=plugin_paths, device=device,
                     resume=resume, progress=progress, log=log, suite=suite_record)
    log(f"[train] done in {time.perf_counter() - t0:.0f} s")

    if "attack" in suite:
        from . import attack

        t1 = time.perf_counter()
        a = suite["attack"]
        attack.attack_run(out, attacks=a.get("attacks"), eps=a.get("eps"), eps_l2=a.get("eps_l2"),
                          n_examples=a.get("n_examples"), batch_size=a.get("batch_size"), eot_iter=a.get("eot_iter"),
                          attack_set=a.get("set"), device=device,
                          data_dir=data_dir, resume=True, progress=progress, log=log)
        log(f"[attack] done in {time.perf_counter() - t1:.0f} s")

    t2 = time.perf_counter()
    time_run(out, suite.get("timing", {}), device=device, log=log)
    log(f"[timing] done in {time.perf_counter() - t2:.0f} s")

    from .leaderboard import write_leaderboard

    data = open_run(out)
    path = write_leaderboard(out)
    try:
        from .report import make_figures

        make_figures(out)
    except ImportError:
        pass
    log(f"leaderboard: {path}")
    log(path.read_text())
    log(f"suite {suite['name']} finished in {time.perf_counter() - t0:.0f} s")
    return 1 if failed_models(data, names, seeds) else 0


def time_run(run_dir: Path, timing: dict, *, device, fresh: bool = False, log=print) -> None:
    """Throughput of every trained model (first seed only: speed does not depend on the seed)."""
    from .results import seed_entry, write_results
    from .runs import load_trained, open_run, trained_models
    from .timing import throughput

    data = open_run(run_dir)
    seen = set()
    for name, seed in trained_models(run_dir, data):
        if name in seen:
            continue
        seen.add(name)
        entry = seed_entry(data, name, seed)
        if "throughput" in entry and not fresh:
            log(f"{name}: already timed (pass --fresh to time it again)")
            continue
        model = load_trained(run_dir, name, seed, device)
        ds = data["run"]["dataset"]
        entry["throughput"] = throughput(model, ds["in_shape"], ds["num_classes"], device=device,
                                         batch_sizes=tuple(timing.get("batch_sizes", (1, 100, 1000))),
                                         train_batch=int(timing.get("train_batch", 100)),
                                         min_run_time=float(timing.get("min_run_time", 0.5)))
        tp = entry["throughput"]
        log(f"{name}: {tp['params']:,} params, inference {tp['inference'].get('100', {}).get('median', 0):,.0f} ex/s "
            f"@100, training {tp['train']['median']:,.0f} ex/s")
        write_results(run_dir, data)


# ------------------------------------------------------------------------------------------ CLI
def cmd_run(args) -> int:
    from .cli import set_threads
    from .env import resolve_device

    set_threads(args.threads)
    suite = load_suite(args.suite)
    out = Path(args.out or f"runs/{suite['name']}")
    return run_suite(suite, out, device=resolve_device(args.device), data_dir=args.data_dir,
                     plugin_paths=args.plugin, resume=args.resume, progress=args.progress)


def cmd_time(args) -> int:
    from .cli import set_threads
    from .env import resolve_device

    from .runs import require_run_dir

    set_threads(args.threads)
    if not args.min_run_time > 0:
        raise BenchError(f"--min-run-time must be > 0, got {args.min_run_time}")
    time_run(require_run_dir(args.run_dir), {"min_run_time": args.min_run_time}, device=resolve_device(args.device),
             fresh=args.fresh)
    return 0


def register(sub) -> None:
    from .cli import add_data, add_device, add_plugins, add_progress

    p = sub.add_parser("run", help="run a whole benchmark suite: train, attack, time, leaderboard")
    p.add_argument("--suite", required=True, help=f"a shipped suite ({', '.join(list_suites())}) or a .toml file")
    p.add_argument("--out", default=None, metavar="RUN_DIR", help="run directory (default: runs/<suite>)")
    p.add_argument("--resume", action="store_true", help="continue; finished work is never redone")
    p.add_argument("--threads", type=int, default=None)
    add_data(p)
    add_device(p)
    add_plugins(p)
    add_progress(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("time", help="measure inference and training throughput of a run's models")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--min-run-time", type=float, default=0.5, help="seconds per measurement (default 0.5)")
    p.add_argument("--fresh", action="store_true", help="time models that were timed before again")
    p.add_argument("--threads", type=int, default=None)
    add_device(p)
    p.set_defaults(func=cmd_time)
