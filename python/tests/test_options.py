"""Keyword options over a config file (issue 25, item 7): a keyword left at None is not given, so
the file's value holds; a flag given as False or True overrides the file either way, as
`--drop-null-target=false` does on the command line."""
import inspect
import json

import numpy as np
import pytest

import spillway
from spillway._options import options_json

ROWS = 8 * 3000  # the session universe (conftest.make_universe): each symbol's last target null


def nulls(path):
    f = spillway.open(path)
    return int(np.isnan(f.column(f.target_column)).sum())


@pytest.fixture()
def config(tmp_path):
    def write(text):
        cfg = tmp_path / "build.toml"
        cfg.write_text('target = "target"\n' + text)
        return cfg
    return write


def test_false_overrides_a_true_in_the_config(universe, config, tmp_path):
    cfg = config("drop-null-target = true\n")
    out = tmp_path / "kept.spill"
    s = spillway.build(universe, out, config=cfg, drop_null_target=False)
    assert s["rows"] == ROWS and nulls(out) == 8  # the null-target rows are kept


def test_none_leaves_the_config(universe, config, tmp_path):
    cfg = config("drop-null-target = true\n")
    out = tmp_path / "dropped.spill"
    s = spillway.build(universe, out, config=cfg)  # drop_null_target=None: not given
    assert s["rows"] == ROWS - 8 and nulls(out) == 0
    s = spillway.build(universe, out, config=cfg, drop_null_target=None)
    assert s["rows"] == ROWS - 8


def test_true_overrides_a_false_in_the_config(universe, config, tmp_path):
    cfg = config("drop-null-target = false\n")
    out = tmp_path / "dropped.spill"
    s = spillway.build(universe, out, config=cfg, drop_null_target=True)
    assert s["rows"] == ROWS - 8 and nulls(out) == 0


def test_no_float32_false_overrides_the_config(universe, config, tmp_path):
    cfg = config("no-float32 = true\nmax-rows = 10\n")
    wide, narrow = tmp_path / "f64.spill", tmp_path / "f32.spill"
    spillway.build(universe, wide, config=cfg)
    spillway.build(universe, narrow, config=cfg, no_float32=False)
    assert spillway.open(wide).column("f000").dtype == np.float64
    assert spillway.open(narrow).column("f000").dtype == np.float32


def test_flags_given_as_false_reach_the_library():
    assert json.loads(options_json(drop_null_target=False, no_float32=None)) == {
        "drop-null-target": False}
    assert json.loads(options_json(no_target=np.bool_(False))) == {"no-target": False}
    with pytest.raises(TypeError, match="drop_null_target must be True or False"):
        options_json(drop_null_target="no")


@pytest.mark.parametrize("function", [spillway.build, spillway.inspect])
def test_every_flag_defaults_to_not_given(function):
    flags = {name: p.default for name, p in inspect.signature(function).parameters.items()
             if p.annotation == "Optional[bool]" or p.annotation == "bool"}
    assert flags and all(default is None for default in flags.values()), flags


def test_inspect_takes_flags_as_given(universe):
    off = spillway.inspect(universe, target="target", drop_null_target=False)
    on = spillway.inspect(universe, target="target", drop_null_target=True)
    assert off["symbols"] == on["symbols"] == 8
