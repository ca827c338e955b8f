"""Prometheus remote_write 1.0 protobuf messages, built from a descriptor in code.

The schema is the subset of ``prometheus/prompb/{remote,types}.proto`` that carries
float samples: ``WriteRequest{timeseries}``, ``TimeSeries{labels, samples}``,
``Label{name, value}``, ``Sample{value, timestamp}``. Exemplars, histograms and
metadata are left out; the protobuf runtime skips those fields when parsing.

Besides the real messages there are *views*: other message types that parse the same
bytes differently, so the protobuf runtime does in C what would otherwise be a Python
loop per series. A view leaves out fields (the runtime keeps them as unknown fields,
which can be discarded), or declares a repeated message field as a single message,
which the protobuf merge rule turns into one message holding every element's fields
concatenated: ``SampleColumnsRequest`` yields all timestamps and all values of a
request as two packed columns. (Zero values are not on the wire in proto3, so a
column may come out shorter than the number of samples; callers check lengths.)
``EncodeRequest`` is the writing side: it takes labels already serialized.
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


def _view_request(proto: Any, name: str, series_type: str, *, repeated: bool) -> None:
    msg = proto.message_type.add(name=name)
    _field(msg, "timeseries", 1, _F.TYPE_MESSAGE, repeated=repeated, type_name=series_type)


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
    request = proto.message_type.add(name="WriteRequest")
    _field(request, "timeseries", 1, _F.TYPE_MESSAGE, repeated=True,
           type_name=".prometheus.TimeSeries")
    # views
    labels_only = proto.message_type.add(name="LabelsOnlySeries")
    _field(labels_only, "labels", 1, _F.TYPE_MESSAGE, repeated=True,
           type_name=".prometheus.Label")
    label_keys = proto.message_type.add(name="LabelKeysSeries")
    _field(label_keys, "labels", 1, _F.TYPE_BYTES, repeated=True)
    _view_request(proto, "LabelKeysRequest", ".prometheus.LabelKeysSeries", repeated=True)
    samples_only = proto.message_type.add(name="SamplesOnlySeries")
    _field(samples_only, "samples", 2, _F.TYPE_MESSAGE, repeated=True,
           type_name=".prometheus.Sample")
    _view_request(proto, "SamplesOnlyRequest", ".prometheus.SamplesOnlySeries", repeated=True)
    _view_request(proto, "MergedSamplesRequest", ".prometheus.SamplesOnlySeries",
                  repeated=False)
    columns = proto.message_type.add(name="SampleColumns")
    _field(columns, "value", 1, _F.TYPE_DOUBLE, repeated=True)
    _field(columns, "timestamp", 2, _F.TYPE_INT64, repeated=True)
    merged_columns = proto.message_type.add(name="MergedColumnsSeries")
    _field(merged_columns, "samples", 2, _F.TYPE_MESSAGE,
           type_name=".prometheus.SampleColumns")
    _view_request(proto, "SampleColumnsRequest", ".prometheus.MergedColumnsSeries",
                  repeated=False)
    encode = proto.message_type.add(name="EncodeSeries")
    _field(encode, "labels", 1, _F.TYPE_BYTES, repeated=True)
    _field(encode, "samples", 2, _F.TYPE_MESSAGE, repeated=True, type_name=".prometheus.Sample")
    _view_request(proto, "EncodeRequest", ".prometheus.EncodeSeries", repeated=True)
    raw = proto.message_type.add(name="RawSeriesRequest")
    _field(raw, "timeseries", 1, _F.TYPE_BYTES, repeated=True)
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _cls(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"prometheus.{name}"))


Sample: Any = _cls("Sample")
Label: Any = _cls("Label")
TimeSeries: Any = _cls("TimeSeries")
WriteRequest: Any = _cls("WriteRequest")
LabelsOnlySeries: Any = _cls("LabelsOnlySeries")
LabelKeysRequest: Any = _cls("LabelKeysRequest")
SamplesOnlyRequest: Any = _cls("SamplesOnlyRequest")
MergedSamplesRequest: Any = _cls("MergedSamplesRequest")
SampleColumnsRequest: Any = _cls("SampleColumnsRequest")
RawSeriesRequest: Any = _cls("RawSeriesRequest")
EncodeSeries: Any = _cls("EncodeSeries")
EncodeRequest: Any = _cls("EncodeRequest")
