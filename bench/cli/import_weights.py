"""``vib-bench import MODEL WEIGHTS --into RUN_DIR``: evaluate weights trained outside vib-bench."""

from __future__ import annotations

from pathlib import Path

from ..import_options import ImportOptions
from .common import add_data, add_device, add_plugins, add_threads, device, parse_overrides, set_threads
from .flags import add_flags, flag_values


def cmd_import(args) -> int:
    from ..import_weights import import_weights

    set_threads(args.threads)
    values = flag_values(args, ImportOptions)
    import_weights(
        ImportOptions(
            model=args.model,
            weights=Path(args.weights),
            **{**values, "into": Path(values["into"])},
            overrides=parse_overrides(args.set),
            data_dir=args.data_dir,
            device=device(args.device),
            plugins=args.plugin,
        )
    )
    return 0


def register(sub) -> None:
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
    add_flags(p, ImportOptions)
    add_data(p)
    add_device(p)
    add_threads(p)
    add_plugins(p)
    p.set_defaults(func=cmd_import)
