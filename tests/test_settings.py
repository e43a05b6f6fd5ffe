"""Settings are declared once: every suite key and every stage flag of a command comes from a field of the
stage's options dataclass (``bench.settings``), and the suite, the CLI and the dataclass agree on defaults."""

import argparse
from pathlib import Path

import pytest

from bench import suite as suite_mod
from bench.attack.options import AttackOptions
from bench.claims.options import ClaimsOptions
from bench.cli import build_parser
from bench.cli.common import SHARED_FLAGS
from bench.cli.flags import dest_of
from bench.errors import BenchError
from bench.import_options import ImportOptions
from bench.info.options import InfoOptions, InfoplaneOptions, MiValidateOptions, Plane12Options, Plane12Training
from bench.run_options import RunOptions
from bench.settings import default_of, refines_suite, settings, stated_default, suite_schema
from bench.timing_options import TimingOptions
from bench.train.options import TrainSettings

# command -> (options dataclass, suite table)
STAGES = {
    "attack": (AttackOptions, "attack"),
    "time": (TimingOptions, "timing"),
    "train": (TrainSettings, "train"),
    "run": (RunOptions, None),
    "claims": (ClaimsOptions, "claims"),
    "info": (InfoOptions, None),
    "infoplane": (InfoplaneOptions, None),
    "import": (ImportOptions, None),
    "infoplane12": (Plane12Options, None),
    "mi-validate": (MiValidateOptions, None),
}
# flags a command has beyond its own options' and the shared ones (bench.cli.common.SHARED_FLAGS), and why
ALSO = {
    "run": {
        "--stack": TrainSettings,  # run trains: train's flag, declared there
        "-q": None,  # -q/-v: how much the face prints
        "--quiet": None,
        "-v": None,
        "--verbose": None,
    },
    # infoplane12 trains each network: the flags of its training options (Plane12Options.train), declared there
    "infoplane12": {flag: Plane12Training for flag in ("--epochs", "--batch-size", "--lr", "--snapshots")},
    "mi-validate": {"-v": None, "--verbose": None},  # how much the face prints
}


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


@pytest.mark.parametrize("command", sorted(STAGES))
def test_every_flag_comes_from_a_field_and_states_its_default(command):
    cls, _ = STAGES[command]
    p = subparser(command)
    flags = {s: a for a in p._actions for s in a.option_strings}
    declared = {s.flag: (f, s) for f, s in settings(cls) if s.flag}
    for flag, owner in ALSO.get(command, {}).items():
        declared.update({s.flag: (f, s) for f, s in settings(owner) if s.flag == flag} if owner else {})
    stray = sorted(set(flags) - set(declared) - SHARED_FLAGS - set(ALSO.get(command, {})))
    assert not stray, f"{command}: flags not declared by {cls.__name__}: {stray}"
    for flag, (f, s) in declared.items():
        action = flags.get(flag)
        assert action is not None, f"{command}: {flag} declared by {cls.__name__}.{f.name} but not on the command"
        assert action.dest == dest_of(f, s)
        default = default_of(f)
        if refines_suite(cls) and s.suite and s.kind != "table":  # not given: the suite's, else the field's
            assert action.default is None, f"{command} {flag}: a default {action.default!r} would hide the suite's"
            if default is not None:
                assert f"the suite's, else {stated_default(f, s)}" in action.help, flag
        elif s.required:  # no default to agree on: the flag must be given
            assert action.required and action.default is None, flag
        elif s.kind == "bool":  # --NAME turns a false default on, --no-NAME a true one off
            assert action.default is False and flag.startswith("--no-") == (default is True), flag
        elif s.kind == "table":
            assert action.default == [] and default == {}, flag
        elif s.kind == "list":  # written as on the command line
            assert action.default == (None if default is None else ",".join(map(str, default))), flag
        else:
            assert action.default == default, f"{command} {flag}: CLI default {action.default!r} != field {default!r}"


@pytest.mark.parametrize("command", sorted(c for c in STAGES if STAGES[c][1]))
def test_every_suite_key_comes_from_a_field(command):
    cls, table = STAGES[command]

    def of(schema):  # the Setting behind each key's check
        return {k: check.__self__ for k, check in schema.items()}

    assert of(suite_mod.SCHEMA[table]) == of(suite_schema(cls))
    assert set(suite_mod.SCHEMA[table]) == {s.suite for _, s in settings(cls) if s.suite}


def test_an_absent_suite_key_means_the_field_default():
    assert AttackOptions.from_suite(Path("r"), {}) == AttackOptions(Path("r"), resume=True)
    assert TimingOptions.from_suite({}) == TimingOptions() and TimingOptions.from_suite(None) == TimingOptions()
    opts = AttackOptions.from_suite(Path("r"), {"eps": [0.1], "set": {"pgd": {"steps": 5}}, "cascade": False})
    assert opts.eps == [0.1] and opts.attack_set == {"pgd": {"steps": 5}} and opts.cascade is False
    assert TimingOptions.from_suite({"batch_sizes": [7]}).batch_sizes == (7,)


def test_the_cli_reads_back_the_fields_values():
    from bench.cli.flags import flag_values

    args = subparser("attack").parse_args(
        ["RUN", "--eps", "0.1, 0.2", "--eps-l2", "", "--no-cascade", "--batch-size", "64", "--resume"]
    )
    v = flag_values(args, AttackOptions)
    assert v["eps"] == [0.1, 0.2] and v["eps_l2"] == [] and v["cascade"] is False and v["indicators"] is True
    assert v["batch_size"] == 64 and v["resume"] is True and v["grid"] is True and "attack_set" not in v
    defaults = flag_values(subparser("attack").parse_args(["RUN"]), AttackOptions)
    assert AttackOptions(Path("RUN"), **defaults) == AttackOptions(Path("RUN"))
    assert flag_values(subparser("time").parse_args(["RUN"]), TimingOptions) == {
        "min_run_time": TimingOptions().min_run_time,
        "fresh": False,
    }
    with pytest.raises(BenchError, match="bad eps 'x'"):
        flag_values(subparser("attack").parse_args(["RUN", "--eps", "0.1,x"]), AttackOptions)


@pytest.mark.parametrize(
    "table, value, message",
    [
        ("attack", {"eps": [-0.1]}, "[attack] eps: -0.1 is below 0"),
        ("attack", {"eps": []}, "[attack] eps: is empty"),
        ("attack", {"eps_l2": []}, None),
        ("attack", {"n_examples": 0}, "[attack] n_examples: 0 is below 1"),
        ("attack", {"cascade": 1}, "[attack] cascade: 1 is not true or false"),
        ("attack", {"set": 3}, "[attack] set: is not a table"),
        ("attack", {"grid_eps": 0.1}, "unknown key 'grid_eps' in [attack]"),
        ("timing", {"min_run_time": 0}, "[timing] min_run_time: 0 is not above 0"),
        ("timing", {"batch_sizes": [1, "a"]}, "[timing] batch_sizes: 'a' is not an integer"),
        ("claims", {"n_examples": 0}, "[claims] n_examples: 0 is below 1"),
        ("claims", {"alpha": 1}, "[claims] alpha: 1 is not below 1"),
        ("claims", {"eps_linf": [0.1, 1.5]}, "[claims] eps_linf: 1.5 is above 1"),
        ("claims", {"eps_l2": 0.5, "alpha": 0.01, "models": ["mlp"]}, None),
        ("claims", {"eps": [0.1]}, "unknown key 'eps' in [claims]"),
    ],
)
def test_the_generated_suite_checks(tmp_path, table, value, message):
    import json

    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in value.items() if not isinstance(v, dict))
    body += "".join(
        f"\n[{table}.{k}]\n" + "\n".join(f"{a} = {json.dumps(b)}" for a, b in v.items())
        for k, v in value.items()
        if isinstance(v, dict)
    )
    path = tmp_path / "s.toml"
    path.write_text(f'dataset = "digits"\nmodels = "mlp"\n[{table}]\n{body}\n')
    if message is None:
        suite_mod.load_suite(str(path))
    else:
        with pytest.raises(BenchError) as e:
            suite_mod.load_suite(str(path))
        assert message in str(e.value)


# TrainConfig (bench/train/recipe.py) keeps its own defaults; any that differs from the declaration is drift.
TRAIN_CONFIG_DRIFT: set[str] = set()


def test_the_recipe_is_trainconfigs_fields_with_its_defaults():
    import dataclasses

    from bench.train.recipe import TrainConfig

    config = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    recipe = {f.name: default_of(f) for f, s in settings(TrainSettings) if s.suite}
    assert set(recipe) <= set(config), sorted(set(recipe) - set(config))
    differ = {k for k in recipe if recipe[k] != config[k]}
    assert differ <= TRAIN_CONFIG_DRIFT, {k: (recipe[k], config[k]) for k in differ}
    # the recipe never falls back on TrainConfig's defaults: every field is passed
    assert TrainSettings().config().epochs == TrainSettings().epochs == 20
    assert TrainSettings.from_suite({"epochs": 3, "lr": 0.01}).config() == dataclasses.replace(
        TrainConfig(), epochs=3, lr=0.01
    )


def test_train_flags_read_back():
    from bench.cli.flags import flag_values

    v = flag_values(subparser("train").parse_args(["--out", "o"]), TrainSettings)
    assert TrainSettings(**v) == TrainSettings(out="o")
    v = flag_values(
        subparser("train").parse_args(["--out", "o", "--seeds", "1,2", "--models", "", "--epochs", "3"]), TrainSettings
    )
    assert v["seeds"] == [1, 2] and v["models"] == ["*"] and v["epochs"] == 3
    assert subparser("run").get_default("stack") == TrainSettings().stack == RunOptions({}).stack
    v = flag_values(subparser("run").parse_args(["--suite", "smoke", "--seeds", "1", "--dry-run"]), RunOptions)
    assert v["seeds"] == [1] and v["dry_run"] is True and v["suite"] == "smoke" and v["executor"] == "local"


def test_shipped_suites_set_only_declared_keys():
    for name in suite_mod.list_suites():
        suite = suite_mod.load_suite(name)
        for table, cls in (("train", TrainSettings), ("timing", TimingOptions)):
            assert set(suite.get(table, {})) <= {s.suite for _, s in settings(cls) if s.suite}, (name, table)
        assert TrainSettings.from_suite(suite.get("train")).config().validate()


def test_the_claims_suite_keys_come_from_the_fields():
    keys = {s.suite: f.name for f, s in settings(ClaimsOptions) if s.suite}
    assert set(keys) == set(suite_mod.SCHEMA["claims"])
    assert keys["set"] == "attack_set" and "zeros_label" not in keys.values() and "fresh" not in keys.values()
    # an absent key is the field's default; a present one sets its field
    assert ClaimsOptions.from_suite(".", {}) == ClaimsOptions(Path("."))
    opts = ClaimsOptions.from_suite(".", {"n_examples": 7, "eps_linf": [0.2], "set": {"fgsm": {"x": 1}}})
    assert opts.n_examples == 7 and opts.eps_linf == [0.2] and opts.attack_set == {"fgsm": {"x": 1}}
    assert opts.eot_iter == ClaimsOptions(Path(".")).eot_iter == 20


def test_claims_flags_refine_the_suite_s_values():
    from bench.cli.flags import flag_values

    v = flag_values(subparser("claims").parse_args(["RUN"]), ClaimsOptions)
    assert {k for k, x in v.items() if x is not None} == {"fresh", "judge_only"}  # nothing else given
    table = {"n_examples": 50, "eps_linf": [0.3], "models": ["mlp", "vib*"], "batch_size": 9}
    assert ClaimsOptions.from_suite(".", table, **v) == ClaimsOptions.from_suite(".", table)
    args = ["RUN", "--n-examples", "12", "--eps", "0.1,0.2", "--models", "", "--baseline", "dropout", "--judge-only"]
    v = flag_values(subparser("claims").parse_args(args), ClaimsOptions)
    opts = ClaimsOptions.from_suite(".", table, **v)
    assert opts.n_examples == 12 and opts.eps_linf == [0.1, 0.2] and opts.baseline == "dropout" and opts.judge_only
    assert opts.models == ["mlp", "vib*"] and opts.batch_size == 9  # --models '': not given, the suite's
    v = flag_values(subparser("claims").parse_args(["RUN", "--eps", ""]), ClaimsOptions)
    assert v["eps_linf"] == []  # given empty: refused by validate, not silently the default
    with pytest.raises(BenchError, match="bad eps 'x'"):
        flag_values(subparser("claims").parse_args(["RUN", "--eps", "0.1,x"]), ClaimsOptions)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_examples": 0}, "claims: n_examples: 0 is below 1"),
        ({"alpha": 1.0}, "claims: alpha: 1 is not below 1"),
        ({"zeros_n": -1}, "claims: zeros_n: -1 is below 0"),
        ({"eps_l2": 0.0}, "claims: eps_l2: 0 is not above 0"),
        ({"eps_linf": []}, "claims: eps_linf: is empty"),
        ({"eps_linf": [0.0]}, "claims: eps_linf must list budgets > 0"),
    ],
)
def test_claims_options_are_checked_by_their_declarations(change, message):
    import dataclasses

    with pytest.raises(BenchError) as e:
        dataclasses.replace(ClaimsOptions(Path(".")), **change).validate()
    assert str(e.value) == message
    assert ClaimsOptions(Path(".")).validate().alpha == 0.05


def test_info_and_infoplane_flags_read_back():
    from bench.cli.flags import flag_values

    for command, cls in (("info", InfoOptions), ("infoplane", InfoplaneOptions)):
        defaults = flag_values(subparser(command).parse_args(["RUN"]), cls)
        assert cls(Path("RUN"), **defaults) == cls(Path("RUN")), command
    v = flag_values(
        subparser("info").parse_args(["R", "--no-plot", "--no-copula", "--estimators", "infonce"]), InfoOptions
    )
    assert v["plot"] is False and v["copula"] is False and v["estimators"] == ["infonce"] and v["resume"] is False
    assert flag_values(subparser("info").parse_args(["R", "--estimators", ""]), InfoOptions)["estimators"] == []
    v = flag_values(
        subparser("infoplane").parse_args(["R", "--estimator", "", "--bins", "", "--layers", ""]), InfoplaneOptions
    )
    assert v["estimators"] == [] and v["bins"] == [] and v["layers"] == []  # given empty: an error, not the default
    v = flag_values(subparser("infoplane").parse_args(["R", "--estimator", "mine", "--bins", "2, 8"]), InfoplaneOptions)
    assert v["estimators"] == ["mine"] and v["bins"] == [2, 8]
    with pytest.raises(BenchError, match="bad bin count 'x'"):
        flag_values(subparser("infoplane").parse_args(["R", "--bins", "2,x"]), InfoplaneOptions)


def test_import_flags_read_back():
    from bench.cli.flags import flag_values

    v = flag_values(subparser("import").parse_args(["mlp", "w.safetensors", "--into", "r"]), ImportOptions)
    assert ImportOptions("mlp", Path("w"), **{**v, "into": Path("r")}) == ImportOptions("mlp", Path("w"), Path("r"))
    with pytest.raises(BenchError, match="required: --into"):
        subparser("import").parse_args(["mlp", "w.safetensors"])


def test_infoplane12_flags_read_back():
    from bench.cli.flags import flag_values

    args = subparser("infoplane12").parse_args(["--out", "o"])
    opts = Plane12Options(
        **flag_values(args, Plane12Options), train=Plane12Training(**flag_values(args, Plane12Training))
    )
    assert opts == Plane12Options("o")
    args = subparser("infoplane12").parse_args(["--out", "o", "--seeds", "", "--lr", "0.01", "--rows", "9"])
    v, t = flag_values(args, Plane12Options), flag_values(args, Plane12Training)
    assert v["seeds"] == [] and v["outer_rows"] == 9 and t["lr"] == 0.01 and t["epochs"] == 3000


def test_mi_validate_flags_read_back():
    from bench.cli.flags import flag_values
    from bench.info.validate import KINDS

    defaults = flag_values(subparser("mi-validate").parse_args([]), MiValidateOptions)
    assert MiValidateOptions(**defaults) == MiValidateOptions() and defaults["estimators"] is None
    args = subparser("mi-validate").parse_args(["--estimators", "mine, jsd", "--no-copula", "--kinds", "", "--quick"])
    v = flag_values(args, MiValidateOptions)
    assert v["estimators"] == ["mine", "jsd"] and v["copula"] is False and v["bounds"] is True
    assert v["kinds"] is None and v["quick"] is True  # --kinds '': every kind, as before
    assert flag_values(subparser("mi-validate").parse_args(["--estimators", ""]), MiValidateOptions)["estimators"] == []
    assert tuple(KINDS) == ("plain", "warped", "heavy-tailed", "hard")
