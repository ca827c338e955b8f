"""Notifications to send in tests: a GPU alert group as the dispatcher would build it."""

from __future__ import annotations

from dcops.alerts.notifications import AlertStatus, Notification, NotifiedAlert

T0 = 1_700_000_000.0


def gpu_alert(gpu: str, status: AlertStatus = AlertStatus.FIRING, *,
              node: str = "gpu-node-07", ends_at: float | None = None) -> NotifiedAlert:
    return NotifiedAlert(
        labels={"alertname": "GpuTooHot", "node": node, "gpu": gpu, "severity": "page"},
        annotations={"summary": f"GPU {gpu} on {node} is hot",
                     "description": "above 85 C for 5m"},
        status=status, starts_at=T0 - 300.0 + float(gpu), ends_at=ends_at,
        generator_url="http://dcops.example:9090/graph?g0.expr=gpu_temp",
    )


def notification(*alerts: NotifiedAlert, receiver: str = "oncall",
                 id: str = "n-1") -> Notification:
    return Notification(
        receiver=receiver, group_key='{}:{alertname="GpuTooHot"}',
        group_labels={"alertname": "GpuTooHot"}, alerts=alerts,
        external_url="http://dcops.example:8080", created_at=T0, id=id,
    )
