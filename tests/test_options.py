"""Typed option declarations (`selfgrow.options`): one dataclass per component, checked in one place."""

from __future__ import annotations

from dataclasses import dataclass, fields

import pytest

from selfgrow.errors import SelfgrowError
from selfgrow.growth import GROWERS, build_grower
from selfgrow.listing import growers_table, retention_table
from selfgrow.options import Configurable, check_options, option, option_defaults
from selfgrow.registry import accepted_options
from selfgrow.retention import RETENTION, build_retention


@dataclass
class Example:
    count: int = option(3, at_least=1)
    rate: float | None = option(None, above=0, at_most=1, note="null: off")
    kind: str = option("a", choices=lambda: ("a", "b"))
    sizes: list[int] = option(factory=lambda: [1, 2], at_least=1, nonempty=True)
    flag: bool = False


def test_values_are_checked_against_type_range_and_choices_in_one_sentence():
    cases = [
        ({"count": 0}, "thing option count=0 is invalid; accepted: an integer >= 1."),
        ({"count": True}, "thing option count=True is invalid; accepted: an integer >= 1."),
        ({"count": 2.0}, "thing option count=2.0 is invalid; accepted: an integer >= 1."),
        ({"rate": 0}, "thing option rate=0 is invalid; accepted: null or a finite number in (0, 1] (null: off)."),
        ({"rate": 1.5}, "thing option rate=1.5 is invalid; accepted: null or a finite number in (0, 1] (null: off)."),
        ({"kind": "c"}, "thing option kind='c' is invalid; accepted: one of a, b."),
        ({"sizes": [1, 0]}, "thing option sizes=[1, 0] is invalid; accepted: a list of integers, each >= 1, not empty."),
        ({"sizes": []}, "thing option sizes=[] is invalid; accepted: a list of integers, each >= 1, not empty."),
        ({"flag": "yes"}, "thing option flag='yes' is invalid; accepted: true or false."),
        ({"cuont": 2}, "Unknown option 'cuont' for thing; accepted: count, rate, kind, sizes, flag. Did you mean 'count'?"),
    ]
    for values, message in cases:
        with pytest.raises(SelfgrowError) as caught:
            check_options(Example, values, "thing")
        assert str(caught.value) == message


def test_accepted_values_build_the_declaration_and_unnamed_ones_keep_their_default():
    made = check_options(Example, {"rate": 1, "count": 1, "sizes": [4]}, "thing")
    assert made == Example(count=1, rate=1, kind="a", sizes=[4], flag=False)
    assert option_defaults(Example) == {"count": 3, "rate": None, "kind": "a", "sizes": [1, 2], "flag": False}
    assert Example().sizes is not Example().sizes  # a factory, not one shared list


def test_a_configurable_sets_each_option_as_an_attribute():
    class Thing(Configurable):
        Options = Example
        component, name = "thing", "demo"

    thing = Thing(count=5)
    assert (thing.count, thing.rate, thing.kind, thing.sizes, thing.options.count) == (5, None, "a", [1, 2], 5)
    with pytest.raises(SelfgrowError, match="^thing 'demo' option count=0 is invalid"):
        Thing(count=0)


@pytest.mark.parametrize("registry", [GROWERS, RETENTION], ids=["growers", "retention"])
def test_every_built_in_component_declares_its_options_once(registry):
    """Every accepted option is a field of the class's declaration, and no __init__ adds keywords of its own."""
    for name, cls in registry.items():
        assert issubclass(cls, Configurable), name
        assert accepted_options(cls) == [f.name for f in fields(cls.Options)], name
        built = registry.build(name)
        for key, default in option_defaults(cls.Options).items():
            assert getattr(built.options, key) == default, (name, key)


def test_the_python_api_the_registry_and_the_listing_share_the_defaults():
    from selfgrow.growth.bindgrow import BindGrowGrower
    from selfgrow.growth.compound import CompoundGrower
    from selfgrow.retention.distill import LwF

    assert CompoundGrower().n_trials == build_grower("compound").n_trials == 6
    assert build_grower("searched").n_trials == 8
    bindgrow = BindGrowGrower()
    assert (bindgrow.n_trials, bindgrow.sampler, bindgrow.objective) == (6, "nsga2", "params")
    assert LwF().alpha == build_retention("lwf").alpha == 1.0
    assert "n_trials=6" in growers_table(None).split("\ncompound")[1].splitlines()[0]
    assert "alpha=1.0, temperature=2.0" in retention_table(None)


def test_cross_option_checks_run_when_the_declaration_is_built():
    with pytest.raises(SelfgrowError, match="schedule takes width_factor or width_per_class, not both"):
        build_grower("schedule", width_factor=2.0, width_per_class=4)
    with pytest.raises(SelfgrowError, match="firefly good_enough needs check_epochs >= 1"):
        build_grower("firefly", good_enough=0.9, check_epochs=0)
    with pytest.raises(SelfgrowError, match="retention_space=.* is invalid"):
        build_grower("searched", retention_space={"lwf.alpha": []})
