import pytest

from dqcl.errors import SpecError
from dqcl.config.expand import expand
from dqcl.config.parse import load_spec
from dqcl.config.schema import default_spec_path

from conftest import tiny_spec_text


def test_quick_spec_is_valid_and_has_two_orderings_and_four_strategies():
    spec = load_spec(default_spec_path())
    assert len(spec.orderings) >= 2
    assert {s.name for s in spec.strategies.values()} >= {"naive", "joint", "cumulative", "replay"}
    runs = expand(spec)
    assert len(runs) == len(spec.orderings) * len(spec.strategies) * len(spec.seeds)
    assert len({r.key for r in runs}) == len(runs)


def test_run_keys_are_stable_and_depend_on_the_config(tmp_path, tiny_spec):
    a = [r.key for r in expand(load_spec(tiny_spec))]
    b = [r.key for r in expand(load_spec(tiny_spec))]
    assert a == b
    tiny_spec.write_text(tiny_spec.read_text().replace("epochs = 1", "epochs = 2"))
    assert set(a).isdisjoint(r.key for r in expand(load_spec(tiny_spec)))


def test_strategy_params_are_recorded_with_defaults(tmp_path, tiny_spec):
    spec = load_spec(tiny_spec)
    assert spec.strategies["replay"].params == {"rate": 0.5}
    assert spec.strategies["naive"].params == {}


@pytest.mark.parametrize(
    "edit,message",
    [
        (("[model]", "[modle]"), "unknown key 'modle' (did you mean 'model'?)"),
        (("epochs = 1", "epocs = 1"), "train: unknown key 'epocs' (did you mean 'epochs'?)"),
        (("epochs = 1", "epochs = \"ten\""), "train.epochs: expected int"),
        (('orderings = [["cyto", "histo"]]', 'orderings = [["cyto", "histp"]]'), "unknown domain 'histp' (did you mean 'histo'?)"),
        (("[strategies.naive]", "[strategies.naiv]"), "unknown strategy 'naiv' (did you mean 'naive'?)"),
        (("rate = 0.5", "rate = 1.5"), "rate must be in (0, 1]"),
        (("rate = 0.5", "rat = 0.5"), "strategy 'replay': unknown key 'rat' (did you mean 'rate'?)"),
        (("rate = 0.5", "rate = \"half\""), "'rate' of strategy 'replay' must be float"),
        (("n_train = 2", "n_trian = 2"), "domains.cyto: unknown key 'n_trian'"),
        (("[domains.histo]", "[domains.histo]\nkind = \"hist\""), "unknown domain 'hist'"),
        (("seeds = [0]", "seeds = []"), "study.seeds must be a non-empty list"),
        (("[study]", "[study\n"), "malformed TOML"),
    ],
)
def test_bad_specs_get_one_clear_line(tmp_path, edit, message):
    p = tmp_path / "bad.toml"
    p.write_text(tiny_spec_text(tmp_path).replace(*edit, 1))
    with pytest.raises(SpecError) as err:
        load_spec(p)
    text = str(err.value)
    assert message in text and str(p) in text and "\n" not in text


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "none.toml")


def test_folder_paths_resolve_against_the_spec_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ../data is outside the spec's folder but inside the working directory
    sub = tmp_path / "specs"
    sub.mkdir()
    p = sub / "s.toml"
    p.write_text('[domains.mine]\nkind = "folder"\npath = "../data/mine"\n[strategies.naive]\n')
    spec = load_spec(p)
    assert spec.domains["mine"].params["path"] == str((tmp_path / "data" / "mine").resolve())


def test_named_orderings(tmp_path):
    from dqcl.config.parse import parse_spec

    raw = {"domains": {"cyto": {}, "histo": {}, "nuclei": {}}, "strategies": {"naive": {}}}
    raw["study"] = {"orderings": "all"}
    assert len(parse_spec(raw).orderings) == 6
    raw["study"] = {"orderings": ["reverse", ["cyto", "histo"], ["cyto", "histo"]]}
    assert parse_spec(raw).orderings == (("nuclei", "histo", "cyto"), ("cyto", "histo"))  # duplicates dropped
    raw["study"] = {}
    assert parse_spec(raw).orderings == (("cyto", "histo", "nuclei"),)


@pytest.mark.parametrize("value,message", [("al", "unknown named ordering 'al' (did you mean 'all'?)"), ([], "study.orderings is empty")])
def test_bad_named_orderings(value, message):
    from dqcl.config.parse import parse_spec

    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        parse_spec({"study": {"orderings": value}, "domains": {"cyto": {}}, "strategies": {"naive": {}}})


def test_shipped_specs_parse():
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sizes = {p.stem: len(expand(load_spec(p))) for p in sorted(bench.glob("*.toml"))}
    assert sizes["orderings"] == 4 * 6 * 6  # a balanced Latin square of 4 domains x 6 strategies x 6 seeds
    assert sizes["budget_claims_replay_seeds"] == (1 + 2 * 3) * 7 and sizes["redundancy_claim_seeds"] == 3 * 7
    assert sizes["tuning_budget_baselines"] == 14 and sizes["steps_converge"] == 2 * 2 * 3
    assert sizes["paper_cyto_histo"] == 2 * 7 * 3
    assert sizes["baselines"] == 13 * 2 * 3 and sizes["baselines_headline"] == 5 * 2 * 2
    assert sizes["claims_replay"] == sizes["claims_replay_gn"] == 10 * 2 * 3
    assert sizes["claims_asymmetry"] == sizes["claims_asymmetry_gn"] == 4 * 3
    assert sizes["redundancy"] == (5 * 4 + 1) * 3
    # one budget: every strategy once per ordering and seed; the headline file adds seeds 3-9 of 7 strategies
    assert sizes["budget_baselines"] == 14 * 2 * 3 and sizes["budget_baselines_headline"] == 7 * 2 * 7
    # the tuned republication: the same cells, and 7 rehearsal strategies at 3 more budgets on cyto > histo
    assert sizes["budget_tuned"] == 14 * 2 * 3 and sizes["budget_tuned_headline"] == 7 * 2 * 7
    assert sizes["budget_tuned_sweep"] == 7 * 3 * 3
    # naive once per source size, replay at each of two budgets per source size
    # claim (c) at one shared rate: naive, and random and DQ replay at 5, 10 and 100 %
    assert sizes["budget_claims_replay"] == (1 + 2 * 3) * 3
    assert sizes["rate_or_count_rate"] == sizes["rate_or_count_count"] == sizes["rate_or_count_share"] == 3 * (1 + 2) * 3


def test_paper_spec_fails_fast_without_its_data(tmp_path, capsys):
    from pathlib import Path

    from dqcl.cli import main

    spec = Path(__file__).resolve().parents[1] / "benchmarks" / "paper_cyto_histo.toml"
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store)]) == 2
    assert "data/cyto: no such folder (domain 'cyto'" in capsys.readouterr().err
    assert not store.exists()


def test_a_relative_path_leading_outside_spec_folder_and_cwd_is_refused(tmp_path, monkeypatch):
    from dqcl.errors import SpecError

    sub = tmp_path / "specs"
    sub.mkdir()
    monkeypatch.chdir(sub)
    p = sub / "s.toml"
    p.write_text('[domains.mine]\nkind = "folder"\npath = "../../outside"\n[strategies.naive]\n')
    with pytest.raises(SpecError, match="leads outside the spec's folder and the working directory"):
        load_spec(p)
    p.write_text(f'[domains.mine]\nkind = "folder"\npath = "{(tmp_path / "abs").as_posix()}"\n[strategies.naive]\n')
    assert load_spec(p).domains["mine"].params["path"] == str((tmp_path / "abs").resolve())  # absolute: the user's choice
