"""Fuzzed configs: any value of any type in any key gives ConfigError or a valid
Config, never another exception (so the CLI never shows a traceback)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assist.config import Config, ConfigError, from_dict, load_config, section_fields, sections

SECTIONS = {name: list(section_fields(cls)) for name, cls in sections().items()}

scalars = st.one_of(
    st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=5), scalars, max_size=3))


@st.composite
def configs(draw: st.DrawFn) -> dict:
    data: dict = {}
    for sec in draw(st.lists(st.sampled_from([*SECTIONS, "bogus", "speach"]), max_size=6, unique=True)):
        keys = SECTIONS.get(sec, ["x"]) + ["unknown_key", "rat"]
        data[sec] = {k: draw(values) for k in draw(st.lists(st.sampled_from(keys), max_size=6, unique=True))}
    if draw(st.booleans()):
        data[draw(st.sampled_from(list(SECTIONS)))] = draw(scalars)  # a section that is not a table
    return data


def check_result(data: dict) -> None:
    try:
        cfg = from_dict(data)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and ":" in p for p in exc.problems)
        assert all("\n" not in p for p in exc.problems)
        return
    assert isinstance(cfg, Config)


@settings(max_examples=400, deadline=None)
@given(configs())
def test_fuzzed_values_never_raise_anything_but_config_error(data: dict) -> None:
    check_result(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_fuzzed_file_bytes_never_raise_anything_but_config_error(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.toml"
        path.write_bytes(raw)
        try:
            load_config(path)
        except ConfigError as exc:
            assert exc.problems
