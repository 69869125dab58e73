"""Safe model files: safetensors weights and ONNX graphs, their signatures and dry runs.

Nothing here unpickles: safetensors is a JSON header plus raw tensor bytes,
and ONNX is a protobuf. The one place that reads a pickle-based PyTorch file,
``convert_pickle``, does so with ``torch.load(weights_only=True)``, whose
restricted unpickler builds tensors and containers and refuses every other
callable, so a file crafted to run code fails to load instead.

A signature lists a model's inputs and outputs as tensor specs:

    {"inputs":  [{"name": "features", "shape": [null, 16], "dtype": "float32",
                  "unit": "GeV", "description": "jet substructure observables"}],
     "outputs": [{"name": "logits", "shape": [null, 5], "dtype": "float32"}]}

``null`` marks a free axis (the batch). A dry run feeds zeros of the declared
input shapes (free axes set to 2) and checks the outputs against the
declaration.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from erumlab.science import nn as registry

DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
          "uint8", "bool")
_ONNX_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64",
               "tensor(float16)": "float16", "tensor(bfloat16)": "bfloat16",
               "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16",
               "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool"}
FREE_AXIS = 2
MAX_HEADER = 100_000_000  # the safetensors format's own limit on its JSON header


class ModelFileError(ValueError):
    """A model file or its declaration is unusable; the message says why."""


@dataclass
class TensorSpec:
    name: str
    shape: list[int | None]
    dtype: str = "float32"
    unit: str = ""
    description: str = ""

    def concrete_shape(self) -> list[int]:
        return [FREE_AXIS if size is None else size for size in self.shape]

    def matches(self, shape: tuple[int, ...] | list[int], dtype: str) -> str | None:
        """None when an actual tensor fits this spec, else what differs."""
        if len(shape) != len(self.shape):
            return f"{self.name}: rank {len(shape)}, declared {len(self.shape)} ({self.shape})"
        for axis, (want, got) in enumerate(zip(self.shape, shape, strict=True)):
            if want is not None and want != got:
                return f"{self.name}: axis {axis} has size {got}, declared {want}"
        if dtype != self.dtype:
            return f"{self.name}: dtype {dtype}, declared {self.dtype}"
        return None


@dataclass
class Signature:
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spec(raw: Any, where: str) -> TensorSpec:
    if not isinstance(raw, dict):
        raise ModelFileError(f"{where}: expected an object with name, shape and dtype")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ModelFileError(f"{where}: needs a name")
    shape = raw.get("shape")
    if not isinstance(shape, list) or not all(
            s is None or (isinstance(s, int) and not isinstance(s, bool) and s > 0)
            for s in shape):
        raise ModelFileError(f"{where} ({name}): shape must be a list of positive sizes or "
                             f"null for a free axis, got {shape!r}")
    dtype = raw.get("dtype", "float32")
    if dtype not in DTYPES:
        raise ModelFileError(f"{where} ({name}): unknown dtype {dtype!r}; one of "
                             f"{', '.join(DTYPES)}")
    return TensorSpec(name=name.strip(), shape=shape, dtype=dtype,
                      unit=str(raw.get("unit", ""))[:50],
                      description=str(raw.get("description", ""))[:500])


def parse_signature(raw: Any) -> Signature:
    """A signature from its JSON form; every problem names the tensor it concerns."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ModelFileError(f"signature: not JSON ({error})") from None
    if not isinstance(raw, dict):
        raise ModelFileError("signature: expected an object with 'inputs' and 'outputs'")
    unknown = set(raw) - {"inputs", "outputs"}
    if unknown:
        raise ModelFileError(f"signature: unknown keys {sorted(unknown)}")
    inputs = raw.get("inputs") or []
    outputs = raw.get("outputs") or []
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise ModelFileError("signature: 'inputs' and 'outputs' are lists")
    signature = Signature(inputs=[_spec(s, f"input {i + 1}") for i, s in enumerate(inputs)],
                          outputs=[_spec(s, f"output {i + 1}") for i, s in enumerate(outputs)])
    for specs in (signature.inputs, signature.outputs):
        seen = [s.name for s in specs]
        if len(set(seen)) != len(seen):
            raise ModelFileError(f"signature: duplicate tensor names in {seen}")
    return signature


def _torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# safetensors ------------------------------------------------------------------


@dataclass
class WeightsInfo:
    tensors: dict[str, dict[str, Any]]
    metadata: dict[str, str]
    parameter_count: int


def read_safetensors_header(path: Path) -> WeightsInfo:
    """Tensor names, shapes and dtypes from the header, without reading the tensors."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ModelFileError("not a safetensors file: shorter than its 8-byte header length")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER, size - 8):
            raise ModelFileError("not a safetensors file: its header length is impossible")
        try:
            header = json.loads(handle.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ModelFileError("not a safetensors file: its header is not JSON") from None
    if not isinstance(header, dict):
        raise ModelFileError("not a safetensors file: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    count = 0
    end = 0
    for name, entry in header.items():
        try:
            start, stop = entry["data_offsets"]
            count += int(np.prod(entry["shape"], dtype=np.int64))
            end = max(end, stop)
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(f"not a safetensors file: bad entry for {name!r}") from None
        if not 0 <= start <= stop:
            raise ModelFileError(f"not a safetensors file: bad offsets for {name!r}")
    if 8 + length + end != size:
        raise ModelFileError(f"truncated or padded safetensors file: the header describes "
                             f"{8 + length + end} bytes, the file has {size}")
    return WeightsInfo(tensors=header, metadata=metadata, parameter_count=count)


def save_weights(module: torch.nn.Module, path: Path,
                 metadata: dict[str, str] | None = None) -> Path:
    """The module's state (parameters and buffers) as safetensors, with its architecture."""
    from safetensors.torch import save_model

    extra = dict(metadata or {})
    try:
        name, config = registry.architecture_of(module)
        extra.update({"erumlab.architecture": name, "erumlab.config": json.dumps(config)})
    except registry.UnknownArchitecture:
        pass
    path = Path(path)
    save_model(module, str(path), metadata=extra or None)
    return path


def load_weights(path: Path, architecture: str, config: dict[str, Any], *,
                 device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build ``architecture`` from ``config`` and fill it with the file's tensors (strictly)."""
    from safetensors.torch import load_model

    module = registry.build(architecture, config)
    try:
        missing, unexpected = load_model(module, str(path), strict=False, device=str(device))
    except RuntimeError as error:  # shape mismatches
        raise ModelFileError(f"the weights do not fit {architecture} with this config: "
                             f"{str(error).splitlines()[-1].strip()}") from None
    except Exception as error:  # the file itself (safetensors_rust.SafetensorError)
        raise ModelFileError(f"unreadable safetensors file: {error}") from None
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {sorted(missing)[:5]}")
        if unexpected:
            parts.append(f"unexpected {sorted(unexpected)[:5]}")
        raise ModelFileError(f"the weights do not fit {architecture} with this config: "
                             f"{'; '.join(parts)}")
    module.to(device)
    module.eval()
    return module


def dry_run_torch(module: torch.nn.Module, signature: Signature) -> Signature:
    """Run the module on zeros of the declared inputs; check (or infer) the outputs."""
    if not signature.inputs:
        raise ModelFileError("signature: declare at least one input")
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    zeros = [torch.zeros(spec.concrete_shape(), dtype=_torch_dtype(spec.dtype), device=device)
             for spec in signature.inputs]
    module.eval()
    try:
        with torch.no_grad():
            result = module(*zeros)
    except Exception as error:
        raise ModelFileError(f"dry run on zero inputs failed: {type(error).__name__}: "
                             f"{error}") from None
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    if not all(isinstance(o, torch.Tensor) for o in outputs):
        raise ModelFileError("dry run: the model returned something other than tensors")
    return _check_outputs(signature, [(tuple(o.shape), _dtype_name(o.dtype)) for o in outputs])


def _check_outputs(signature: Signature, actual: list[tuple[tuple[int, ...], str]]) -> Signature:
    if not signature.outputs:  # undeclared: describe what came out
        free = {len(spec.shape) and spec.shape[0] is None for spec in signature.inputs}
        outputs = []
        for index, (shape, dtype) in enumerate(actual):
            dims: list[int | None] = list(shape)
            if True in free and dims and dims[0] == FREE_AXIS:
                dims[0] = None
            outputs.append(TensorSpec(name=f"output_{index}", shape=dims, dtype=dtype))
        return Signature(inputs=signature.inputs, outputs=outputs)
    if len(actual) != len(signature.outputs):
        raise ModelFileError(f"dry run: the model returned {len(actual)} output(s), the "
                             f"signature declares {len(signature.outputs)}")
    for spec, (shape, dtype) in zip(signature.outputs, actual, strict=True):
        problem = spec.matches(shape, dtype)
        if problem:
            raise ModelFileError(f"dry run: output {problem}")
    return signature


# ONNX --------------------------------------------------------------------------


@dataclass
class OnnxInfo:
    signature: Signature
    parameter_count: int
    opset: int
    producer: str


def _onnx_dim(dim: Any) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def check_onnx(path: Path, declared: Signature | None = None) -> OnnxInfo:
    """onnx.checker on the graph, then a dry run in ONNX Runtime on zero inputs."""
    import onnx
    import onnxruntime

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise ModelFileError(f"not an ONNX model: {error}") from None
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            # External data names files on the server's disk: never follow them.
            raise ModelFileError("ONNX models with external data files are not accepted; "
                                 "save the model with its weights inside")
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as error:  # onnx.checker.ValidationError, shape inference errors
        raise ModelFileError(f"onnx.checker: {str(error).splitlines()[0]}") from None
    try:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
    except Exception as error:
        raise ModelFileError(f"ONNX Runtime cannot load the model: {error}") from None
    graph_inputs = [TensorSpec(name=i.name, shape=[_onnx_dim(d) for d in i.shape],
                               dtype=_ONNX_TYPES.get(i.type, i.type))
                    for i in session.get_inputs()]
    signature = declared or Signature(inputs=graph_inputs)
    if declared is not None:
        names = [spec.name for spec in declared.inputs]
        if names != [spec.name for spec in graph_inputs]:
            raise ModelFileError(f"signature: the graph's inputs are "
                                 f"{[s.name for s in graph_inputs]}, declared {names}")
    feeds = {spec.name: np.zeros(spec.concrete_shape(), dtype=np.dtype(spec.dtype))
             for spec in signature.inputs}
    try:
        results = session.run(None, feeds)
    except Exception as error:
        raise ModelFileError(f"dry run on zero inputs failed: {error}") from None
    names = [o.name for o in session.get_outputs()]
    checked = _check_outputs(signature, [(tuple(r.shape), str(r.dtype)) for r in results])
    if not declared or not declared.outputs:
        for spec, name in zip(checked.outputs, names, strict=True):
            spec.name = name
    count = int(sum(np.prod(t.dims, dtype=np.int64) for t in model.graph.initializer))
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                default=0)
    return OnnxInfo(signature=checked, parameter_count=count, opset=opset,
                    producer=model.producer_name)


def onnx_session(path: Path) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# Pickle-based PyTorch files -------------------------------------------------------


def convert_pickle(source: Path, target: Path) -> dict[str, torch.Tensor]:
    """A .pt/.pth state dict to safetensors, read with the restricted unpickler only."""
    from safetensors.torch import save_file

    try:
        loaded = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle.UnpicklingError for anything but plain data
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelFileError(
            f"refused to load {source.name}: it is not a plain PyTorch state dict "
            f"(torch.load with weights_only=True: {type(error).__name__}: {first[:300]})"
        ) from None
    if isinstance(loaded, dict) and "state_dict" in loaded and isinstance(
            loaded["state_dict"], dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not loaded or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()):
        raise ModelFileError(f"{source.name} holds no state dict (a mapping of names to "
                             f"tensors); save model.state_dict(), not the model")
    tensors = {name: tensor.detach().contiguous().clone() for name, tensor in loaded.items()}
    save_file(tensors, str(target))
    return tensors


# Inference on declared inputs ------------------------------------------------------


def to_summary(array: np.ndarray, limit: int = 64) -> dict[str, Any]:
    """What a page shows of a tensor: shape, dtype, first values and simple statistics."""
    flat = array.reshape(-1)
    summary: dict[str, Any] = {"shape": list(array.shape), "dtype": str(array.dtype),
                               "values": flat[:limit].tolist(), "truncated": flat.size > limit}
    if flat.size and np.issubdtype(array.dtype, np.number):
        summary.update(min=float(flat.min()), max=float(flat.max()), mean=float(flat.mean()))
    return summary


def run_torch(module: torch.nn.Module, inputs: list[np.ndarray]) -> list[np.ndarray]:
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    module.eval()
    with torch.no_grad():
        result = module(*[torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in inputs])
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    return [o.detach().cpu().numpy() for o in outputs]


def run_onnx(path: Path, signature: Signature, inputs: list[np.ndarray]) -> list[np.ndarray]:
    session = onnx_session(path)
    feeds = {spec.name: array for spec, array in zip(signature.inputs, inputs, strict=True)}
    return list(session.run(None, feeds))
