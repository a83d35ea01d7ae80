"""Every versioned component still computes its golden outputs, or its version was bumped.

See ``tests/golden.py``: a change that moves a component's numbers must bump the component's
version (:mod:`hdbench.versions`, or a reference circuit's ``VERSION``), so that cached results
of the old code are never reused; then ``python -m tests.golden --update``.
"""

import math

import pytest

from tests import golden

STORED = golden.stored()


@pytest.mark.parametrize("component", sorted(golden.COMPONENTS))
def test_component_outputs_match_their_version(component):
    assert component in STORED, f"no golden values for {component}: python -m tests.golden " \
                                f"--update {component}"
    entry = STORED[component]
    version = golden.version_of(component)
    assert entry["version"] == version, (
        f"{component} is at version {version} but its golden values belong to version "
        f"{entry['version']}: regenerate them (python -m tests.golden --update {component})")
    values = golden.COMPONENTS[component]()
    tolerance = golden.TOLERANCE.get(component, golden.DEFAULT_TOLERANCE)
    assert set(values) == set(entry["values"]), (
        f"{component} computes other outputs than its golden values: bump its version")
    moved = {k: (entry["values"][k], v) for k, v in values.items()
             if not math.isclose(v, entry["values"][k], rel_tol=tolerance, abs_tol=1e-9)}
    assert not moved, (
        f"{component} outputs changed at version {version} ({len(moved)} of {len(values)}, "
        f"e.g. {next(iter(moved.items()))}): bump its version so that cached results of the old "
        f"code are not reused, then python -m tests.golden --update {component}")
