"""``vib-bench import MODEL WEIGHTS --into RUN_DIR``: evaluate weights trained outside vib-bench."""

from __future__ import annotations

from pathlib import Path

from .common import add_data, add_device, add_plugins, add_threads, device, parse_overrides, set_threads


def cmd_import(args) -> int:
    from ..import_weights import ImportOptions, import_weights

    set_threads(args.threads)
    import_weights(
        ImportOptions(
            model=args.model,
            weights=Path(args.weights),
            into=Path(args.into),
            overrides=parse_overrides(args.set),
            dataset=args.dataset,
            data_dir=args.data_dir,
            name=args.name,
            seed=args.seed,
            device=device(args.device),
            plugins=args.plugin,
            replace=args.replace,
        )
    )
    return 0


def register(sub) -> None:
    from ..import_weights import DEFAULT_DATASET

    p = sub.add_parser(
        "import",
        help="evaluate weights trained outside vib-bench (a safetensors state dict) in a run directory",
        description="Check a safetensors state dict against a registered architecture (keys and shapes), store it "
        "in RUN_DIR as a trained model and evaluate it on the clean test split. `attack`, `time`, "
        "`info` and `report` then treat it like any trained model; the results record that it was "
        "imported (no training log).",
        epilog="examples:\n"
        "  vib-bench import mlp my_mlp.safetensors --into runs/mine --dataset mnist\n"
        "  vib-bench import vib_beta1e-3 vib.safetensors --into runs/mine --set k=16 --name my_vib\n"
        "  vib-bench attack runs/mine && vib-bench time runs/mine && vib-bench report runs/mine",
    )
    p.add_argument("model", metavar="MODEL", help="a registered architecture (see `vib-bench list models`)")
    p.add_argument(
        "weights",
        metavar="WEIGHTS.safetensors",
        help="a plain state dict saved with safetensors.torch.save_file (a 'module.' prefix is removed)",
    )
    p.add_argument("--into", required=True, metavar="RUN_DIR", help="run directory (created when absent)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model argument the weights were trained with, e.g. --set hidden=64,64 (repeatable)",
    )
    p.add_argument(
        "--dataset",
        default=None,
        help=f"mnist, fashion-mnist or digits (default: the run's; for a new run {DEFAULT_DATASET})",
    )
    p.add_argument(
        "--name",
        default=None,
        help="the model's name in the run (default: MODEL); letters, digits, _ . + = - (one path component)",
    )
    p.add_argument("--seed", type=int, default=0, help="the seed slot it takes in the run (default: 0)")
    p.add_argument(
        "--replace",
        action="store_true",
        help="overwrite the slot (models/<name>/seed<k>/ and its results entry) when it is taken",
    )
    add_data(p)
    add_device(p)
    add_threads(p)
    add_plugins(p)
    p.set_defaults(func=cmd_import)
