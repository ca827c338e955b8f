"""Templates render as Prometheus's Go templates do, and refuse what they cannot do."""

from __future__ import annotations

import numpy as np
import pytest

from dcops.alerts.template import Template, TemplateError, go_float


@pytest.mark.parametrize(("value", "text"), [
    (1e6, "1e+06"), (123456.0, "123456"), (1234567.0, "1.234567e+06"), (0.0001, "0.0001"),
    (0.00001, "1e-05"), (87.5, "87.5"), (100.0, "100"), (-2.5, "-2.5"), (0.1, "0.1"),
    (float("nan"), "NaN"), (float("inf"), "+Inf"),
])
def test_values_print_as_go_prints_a_float64(value: float, text: str) -> None:
    assert go_float(value) == text


def test_labels_values_and_functions() -> None:
    template = Template('{{ $labels.gpu }}/{{ .Labels.node }}={{ $value }} '
                        '{{ $value | humanize }} {{ printf "%.1f" $value }} '
                        '{{ humanizePercentage 0.256 }} {{ 3725 | humanizeDuration }} '
                        '{{ $labels.missing }}|{{ "x" | toUpper }}', "t")
    assert template.render({"gpu": "3", "node": "n1"}, 1234.5) == \
        "3/n1=1234.5 1.234k 1234.5 25.6% 1h 2m 5s |X"


@pytest.mark.parametrize("text", ["{{ $foo }}", "{{ range $labels }}", "{{ x", "{{ }}",
                                  '{{ printf "%d %d" $value }}'])
def test_what_cannot_be_rendered_is_refused_when_loaded(text: str) -> None:
    with pytest.raises(TemplateError):
        Template(text, "rules.yml:4")


def test_the_quick_paths_print_every_value_as_the_digits_do() -> None:
    from dcops.alerts.template import _go_float_digits
    rng = np.random.default_rng(5)
    edges = [1e-4, 1e6, 999999.9999999999, 0.00010000000000000002, 123456.0, 0.1 + 0.2,
             1 / 3, 2.0**-14, 5e-324, 1.7976931348623157e308, -0.0, 0.0]
    values = edges + [-v for v in edges] + (10.0 ** rng.uniform(-8, 10, 5000)).tolist() \
        + (10.0 ** rng.uniform(-320, 308, 5000)).tolist() + [1e16, 1e15 + 0.5, 2.0**60] \
        + rng.integers(-10**7, 10**7, 2000).astype(float).tolist()
    for value in values:
        assert go_float(value) == _go_float_digits(value), value


def test_labels_only_templates_and_constant_ones_say_so() -> None:
    assert Template("warning", "t").constant
    labels_only = Template("{{ $labels.node }} is hot", "t")
    assert not labels_only.constant and not labels_only.uses_value
    assert Template("{{ .Value | humanize }}", "t").uses_value
    assert Template('{{ printf "%.1f" $value }}', "t").uses_value
