"""Templates render as Prometheus's Go templates do, and refuse what they cannot do."""

from __future__ import annotations

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
