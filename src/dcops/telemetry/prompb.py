"""Prometheus remote_write 1.0 protobuf messages, built from a descriptor in code.

The schema is the subset of ``prometheus/prompb/{remote,types}.proto`` that carries
float samples: ``WriteRequest{timeseries}``, ``TimeSeries{labels, samples}``,
``Label{name, value}``, ``Sample{value, timestamp}``. Exemplars, histograms and
metadata are left out; the protobuf runtime skips those fields when parsing.

Besides the real ``TimeSeries`` there is ``KeyedTimeSeries``, a wire-compatible view
whose labels are kept as the raw bytes of each ``Label`` message. Joined together they
form a cheap, exact key for a series, so the decoder can skip building label tuples for
series it has seen before. Parsing is still done entirely by the protobuf runtime.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import (  # type: ignore[import-untyped]
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)

_F = descriptor_pb2.FieldDescriptorProto


def _field(msg: Any, name: str, number: int, kind: int, *, repeated: bool = False,
           type_name: str | None = None) -> None:
    field = msg.field.add()
    field.name = name
    field.number = number
    field.type = kind
    field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name:
        field.type_name = type_name


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="dcops/prometheus_remote.proto", package="prometheus", syntax="proto3"
    )
    sample = proto.message_type.add(name="Sample")
    _field(sample, "value", 1, _F.TYPE_DOUBLE)
    _field(sample, "timestamp", 2, _F.TYPE_INT64)
    label = proto.message_type.add(name="Label")
    _field(label, "name", 1, _F.TYPE_STRING)
    _field(label, "value", 2, _F.TYPE_STRING)
    series = proto.message_type.add(name="TimeSeries")
    _field(series, "labels", 1, _F.TYPE_MESSAGE, repeated=True, type_name=".prometheus.Label")
    _field(series, "samples", 2, _F.TYPE_MESSAGE, repeated=True, type_name=".prometheus.Sample")
    keyed = proto.message_type.add(name="KeyedTimeSeries")
    _field(keyed, "labels", 1, _F.TYPE_BYTES, repeated=True)
    _field(keyed, "samples", 2, _F.TYPE_MESSAGE, repeated=True, type_name=".prometheus.Sample")
    request = proto.message_type.add(name="WriteRequest")
    _field(request, "timeseries", 1, _F.TYPE_MESSAGE, repeated=True,
           type_name=".prometheus.TimeSeries")
    keyed_request = proto.message_type.add(name="KeyedWriteRequest")
    _field(keyed_request, "timeseries", 1, _F.TYPE_MESSAGE, repeated=True,
           type_name=".prometheus.KeyedTimeSeries")
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _cls(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"prometheus.{name}"))


Sample: Any = _cls("Sample")
Label: Any = _cls("Label")
TimeSeries: Any = _cls("TimeSeries")
WriteRequest: Any = _cls("WriteRequest")
KeyedTimeSeries: Any = _cls("KeyedTimeSeries")
KeyedWriteRequest: Any = _cls("KeyedWriteRequest")
