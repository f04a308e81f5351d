from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTYPE_UNSPECIFIED: _ClassVar[DType]
    DTYPE_FLOAT32: _ClassVar[DType]
    DTYPE_FLOAT64: _ClassVar[DType]
    DTYPE_FLOAT16: _ClassVar[DType]
    DTYPE_UINT8: _ClassVar[DType]

class OutputForm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_FORM_UNSPECIFIED: _ClassVar[OutputForm]
    OUTPUT_FORM_TENSOR: _ClassVar[OutputForm]
    OUTPUT_FORM_PNG: _ClassVar[OutputForm]
    OUTPUT_FORM_BOTH: _ClassVar[OutputForm]

class ChannelReduction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_REDUCTION_UNSPECIFIED: _ClassVar[ChannelReduction]
    CHANNEL_REDUCTION_NONE: _ClassVar[ChannelReduction]
    CHANNEL_REDUCTION_SUM: _ClassVar[ChannelReduction]
    CHANNEL_REDUCTION_ABS_SUM: _ClassVar[ChannelReduction]
    CHANNEL_REDUCTION_MAX_ABS: _ClassVar[ChannelReduction]

class ValueType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_TYPE_UNSPECIFIED: _ClassVar[ValueType]
    VALUE_TYPE_FLOAT32: _ClassVar[ValueType]
    VALUE_TYPE_FLOAT16: _ClassVar[ValueType]
    VALUE_TYPE_UINT8: _ClassVar[ValueType]

class Code(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OK: _ClassVar[Code]
    CANCELLED: _ClassVar[Code]
    UNKNOWN: _ClassVar[Code]
    INVALID_ARGUMENT: _ClassVar[Code]
    DEADLINE_EXCEEDED: _ClassVar[Code]
    NOT_FOUND: _ClassVar[Code]
    ALREADY_EXISTS: _ClassVar[Code]
    PERMISSION_DENIED: _ClassVar[Code]
    RESOURCE_EXHAUSTED: _ClassVar[Code]
    FAILED_PRECONDITION: _ClassVar[Code]
    ABORTED: _ClassVar[Code]
    OUT_OF_RANGE: _ClassVar[Code]
    UNIMPLEMENTED: _ClassVar[Code]
    INTERNAL: _ClassVar[Code]
    UNAVAILABLE: _ClassVar[Code]
    DATA_LOSS: _ClassVar[Code]
    UNAUTHENTICATED: _ClassVar[Code]
DTYPE_UNSPECIFIED: DType
DTYPE_FLOAT32: DType
DTYPE_FLOAT64: DType
DTYPE_FLOAT16: DType
DTYPE_UINT8: DType
OUTPUT_FORM_UNSPECIFIED: OutputForm
OUTPUT_FORM_TENSOR: OutputForm
OUTPUT_FORM_PNG: OutputForm
OUTPUT_FORM_BOTH: OutputForm
CHANNEL_REDUCTION_UNSPECIFIED: ChannelReduction
CHANNEL_REDUCTION_NONE: ChannelReduction
CHANNEL_REDUCTION_SUM: ChannelReduction
CHANNEL_REDUCTION_ABS_SUM: ChannelReduction
CHANNEL_REDUCTION_MAX_ABS: ChannelReduction
VALUE_TYPE_UNSPECIFIED: ValueType
VALUE_TYPE_FLOAT32: ValueType
VALUE_TYPE_FLOAT16: ValueType
VALUE_TYPE_UINT8: ValueType
OK: Code
CANCELLED: Code
UNKNOWN: Code
INVALID_ARGUMENT: Code
DEADLINE_EXCEEDED: Code
NOT_FOUND: Code
ALREADY_EXISTS: Code
PERMISSION_DENIED: Code
RESOURCE_EXHAUSTED: Code
FAILED_PRECONDITION: Code
ABORTED: Code
OUT_OF_RANGE: Code
UNIMPLEMENTED: Code
INTERNAL: Code
UNAVAILABLE: Code
DATA_LOSS: Code
UNAUTHENTICATED: Code

class Tensor(_message.Message):
    __slots__ = ("dtype", "shape", "data", "scale", "offset")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    dtype: DType
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    scale: float
    offset: float
    def __init__(self, dtype: _Optional[_Union[DType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ..., scale: _Optional[float] = ..., offset: _Optional[float] = ...) -> None: ...

class NamedTensor(_message.Message):
    __slots__ = ("name", "tensor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    tensor: Tensor
    def __init__(self, name: _Optional[str] = ..., tensor: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class Input(_message.Message):
    __slots__ = ("encoded", "tensor", "normalized")
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    encoded: bytes
    tensor: Tensor
    normalized: bool
    def __init__(self, encoded: _Optional[bytes] = ..., tensor: _Optional[_Union[Tensor, _Mapping]] = ..., normalized: _Optional[bool] = ...) -> None: ...

class MethodRequest(_message.Message):
    __slots__ = ("name", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    params: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Target(_message.Message):
    __slots__ = ("class_index", "predicted", "top_k", "component", "classes")
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    class_index: int
    predicted: bool
    top_k: int
    component: ComponentTarget
    classes: ClassList
    def __init__(self, class_index: _Optional[int] = ..., predicted: _Optional[bool] = ..., top_k: _Optional[int] = ..., component: _Optional[_Union[ComponentTarget, _Mapping]] = ..., classes: _Optional[_Union[ClassList, _Mapping]] = ...) -> None: ...

class ClassList(_message.Message):
    __slots__ = ("indices",)
    INDICES_FIELD_NUMBER: _ClassVar[int]
    indices: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, indices: _Optional[_Iterable[int]] = ...) -> None: ...

class ComponentTarget(_message.Message):
    __slots__ = ("output", "row", "col", "channel", "predicted_channel")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    COL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    output: str
    row: int
    col: int
    channel: int
    predicted_channel: bool
    def __init__(self, output: _Optional[str] = ..., row: _Optional[int] = ..., col: _Optional[int] = ..., channel: _Optional[int] = ..., predicted_channel: _Optional[bool] = ...) -> None: ...

class ValueOptions(_message.Message):
    __slots__ = ("reduction", "value_type")
    REDUCTION_FIELD_NUMBER: _ClassVar[int]
    VALUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    reduction: ChannelReduction
    value_type: ValueType
    def __init__(self, reduction: _Optional[_Union[ChannelReduction, str]] = ..., value_type: _Optional[_Union[ValueType, str]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("input", "methods", "target", "output", "top_k", "request_id", "values", "deadline_unix_s", "stream")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_S_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    input: Input
    methods: _containers.RepeatedCompositeFieldContainer[MethodRequest]
    target: Target
    output: OutputForm
    top_k: int
    request_id: str
    values: ValueOptions
    deadline_unix_s: float
    stream: bool
    def __init__(self, input: _Optional[_Union[Input, _Mapping]] = ..., methods: _Optional[_Iterable[_Union[MethodRequest, _Mapping]]] = ..., target: _Optional[_Union[Target, _Mapping]] = ..., output: _Optional[_Union[OutputForm, str]] = ..., top_k: _Optional[int] = ..., request_id: _Optional[str] = ..., values: _Optional[_Union[ValueOptions, _Mapping]] = ..., deadline_unix_s: _Optional[float] = ..., stream: _Optional[bool] = ...) -> None: ...

class ExplainProgress(_message.Message):
    __slots__ = ("method", "done", "total", "fraction", "eta_s", "image")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    ETA_S_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    method: str
    done: int
    total: int
    fraction: float
    eta_s: float
    image: Tensor
    def __init__(self, method: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., fraction: _Optional[float] = ..., eta_s: _Optional[float] = ..., image: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class ExplainStreamMessage(_message.Message):
    __slots__ = ("progress", "response")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    progress: ExplainProgress
    response: ExplainResponse
    def __init__(self, progress: _Optional[_Union[ExplainProgress, _Mapping]] = ..., response: _Optional[_Union[ExplainResponse, _Mapping]] = ...) -> None: ...

class Status(_message.Message):
    __slots__ = ("code", "message", "reason")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    code: Code
    message: str
    reason: str
    def __init__(self, code: _Optional[_Union[Code, str]] = ..., message: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ClassScore(_message.Message):
    __slots__ = ("index", "label", "probability", "logit")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    LOGIT_FIELD_NUMBER: _ClassVar[int]
    index: int
    label: str
    probability: float
    logit: float
    def __init__(self, index: _Optional[int] = ..., label: _Optional[str] = ..., probability: _Optional[float] = ..., logit: _Optional[float] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("top", "outputs")
    TOP_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    top: _containers.RepeatedCompositeFieldContainer[ClassScore]
    outputs: _containers.RepeatedCompositeFieldContainer[NamedTensor]
    def __init__(self, top: _Optional[_Iterable[_Union[ClassScore, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[NamedTensor, _Mapping]]] = ...) -> None: ...

class FilterEvidence(_message.Message):
    __slots__ = ("filter", "contribution", "map")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    filter: int
    contribution: float
    map: Tensor
    def __init__(self, filter: _Optional[int] = ..., contribution: _Optional[float] = ..., map: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class UnitEvidence(_message.Message):
    __slots__ = ("layer", "unit", "contribution", "formula", "iou")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    FORMULA_FIELD_NUMBER: _ClassVar[int]
    IOU_FIELD_NUMBER: _ClassVar[int]
    layer: str
    unit: int
    contribution: float
    formula: str
    iou: float
    def __init__(self, layer: _Optional[str] = ..., unit: _Optional[int] = ..., contribution: _Optional[float] = ..., formula: _Optional[str] = ..., iou: _Optional[float] = ...) -> None: ...

class Credential(_message.Message):
    __slots__ = ("certified", "sanity_pass", "sanity_spearman", "aopc_morf", "aopc_lerf", "abpc")
    CERTIFIED_FIELD_NUMBER: _ClassVar[int]
    SANITY_PASS_FIELD_NUMBER: _ClassVar[int]
    SANITY_SPEARMAN_FIELD_NUMBER: _ClassVar[int]
    AOPC_MORF_FIELD_NUMBER: _ClassVar[int]
    AOPC_LERF_FIELD_NUMBER: _ClassVar[int]
    ABPC_FIELD_NUMBER: _ClassVar[int]
    certified: bool
    sanity_pass: bool
    sanity_spearman: float
    aopc_morf: float
    aopc_lerf: float
    abpc: float
    def __init__(self, certified: _Optional[bool] = ..., sanity_pass: _Optional[bool] = ..., sanity_spearman: _Optional[float] = ..., aopc_morf: _Optional[float] = ..., aopc_lerf: _Optional[float] = ..., abpc: _Optional[float] = ...) -> None: ...

class Heatmap(_message.Message):
    __slots__ = ("method", "target", "values", "png", "signed", "kind", "stats", "component", "layer", "filters", "units", "credential")
    class StatsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    PNG_FIELD_NUMBER: _ClassVar[int]
    SIGNED_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    LAYER_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    method: str
    target: int
    values: Tensor
    png: bytes
    signed: bool
    kind: str
    stats: _containers.ScalarMap[str, float]
    component: ComponentTarget
    layer: str
    filters: _containers.RepeatedCompositeFieldContainer[FilterEvidence]
    units: _containers.RepeatedCompositeFieldContainer[UnitEvidence]
    credential: Credential
    def __init__(self, method: _Optional[str] = ..., target: _Optional[int] = ..., values: _Optional[_Union[Tensor, _Mapping]] = ..., png: _Optional[bytes] = ..., signed: _Optional[bool] = ..., kind: _Optional[str] = ..., stats: _Optional[_Mapping[str, float]] = ..., component: _Optional[_Union[ComponentTarget, _Mapping]] = ..., layer: _Optional[str] = ..., filters: _Optional[_Iterable[_Union[FilterEvidence, _Mapping]]] = ..., units: _Optional[_Iterable[_Union[UnitEvidence, _Mapping]]] = ..., credential: _Optional[_Union[Credential, _Mapping]] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("decode_ms", "predict_ms", "explain_ms", "encode_ms", "total_ms", "batch_size", "cached")
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    PREDICT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    decode_ms: float
    predict_ms: float
    explain_ms: float
    encode_ms: float
    total_ms: float
    batch_size: int
    cached: bool
    def __init__(self, decode_ms: _Optional[float] = ..., predict_ms: _Optional[float] = ..., explain_ms: _Optional[float] = ..., encode_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., batch_size: _Optional[int] = ..., cached: _Optional[bool] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("status", "model", "prediction", "heatmaps", "timings", "request_id")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    HEATMAPS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    status: Status
    model: str
    prediction: Prediction
    heatmaps: _containers.RepeatedCompositeFieldContainer[Heatmap]
    timings: Timings
    request_id: str
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., model: _Optional[str] = ..., prediction: _Optional[_Union[Prediction, _Mapping]] = ..., heatmaps: _Optional[_Iterable[_Union[Heatmap, _Mapping]]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...
