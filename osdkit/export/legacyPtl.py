"""Rebuild legacy PyTorch-Mobile `.ptl` files (XNNPACK prepacked ops) as ordinary eager modules.

PyTorch <= 2.5 `optimize_for_mobile` wrote graphs that call `prepacked::conv2d_clamp_run` /
`prepacked::linear_clamp_run` with `torch.classes.xnnpack.*OpContext` constants, which newer
PyTorch cannot load. This module reads the archive itself: the pickles with a restricted
unpickler (OpContexts become plain state), the tensors from their storage files, and the
forward method's lite-interpreter bytecode (`bytecode.pkl`), which it decodes symbolically into
a list of whitelisted ops. `LegacyModel` replays that list with `torch.ops.aten` / functional
calls, so it runs eagerly and exports with `torch.export.export`.
"""
import io
import json
import pickle
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from osdkit.export.legacyPtlOps import (Binder, LegacyPtlError, PrepackedLinear, ScriptObject, decode_forward,
                                        iter_refs, script_class)
from osdkit.export.ptlExport import PTL_SHAPE_FILE

__all__ = ["LegacyPtlError", "LegacyModel", "is_legacy_ptl", "load_legacy_ptl", "describe_legacy_ptl"]


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
SHAPE_EXTRA_FILE = f"extra/{PTL_SHAPE_FILE}"  # where torch.jit.save stores our .ptl's extra file
_LIST_BUILDERS = {"build_intlist", "build_doublelist", "build_boollist", "build_tensorlist",
                  "build_genericlist"}


# ---------------------------------------------------------------- reading the archive
def _rebuild_tensor(storage, offset, size, stride, *_):
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


class _Unpickler(pickle.Unpickler):
    """Unpickler that knows only tensors, int/float lists and TorchScript objects."""

    def __init__(self, data, archive, pkl_name, storage_dirs):
        super().__init__(io.BytesIO(data))
        self.archive, self.pkl_name, self.storage_dirs = archive, pkl_name, storage_dirs

    def find_class(self, module, name):
        if module.startswith("__torch__."):
            return script_class(f"{module}.{name}")
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "torch.jit._pickle" and name in _LIST_BUILDERS:
            return list
        if module == "torch.jit._pickle" and name == "restore_type_tag":
            return lambda value, _type: value
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        raise LegacyPtlError(f"{self.pkl_name}: unsupported pickled global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise LegacyPtlError(f"{self.pkl_name}: unexpected persistent id {pid!r}")
        if self.storage_dirs is None:  # shapes only (traced_inputs.pkl stores no data)
            return torch.empty(pid[4], dtype=pid[1], device="meta")
        return self.archive.storage(str(pid[2]), pid[1], pid[4], self.storage_dirs)


class _Archive:
    """A TorchScript zip archive: entries below one top-level folder."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise LegacyPtlError(f"{path}: not a zip archive (or a truncated file)") from None
        names = self.zip.namelist()
        data = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if not data or not any(n.startswith(data[0][:-8] + "code/") for n in names):
            self.zip.close()
            raise LegacyPtlError(f"{path}: not a TorchScript archive (no data.pkl with code/)")
        self.prefix, self.names, self._storages = data[0][:-8], set(names), {}

    def has(self, name):
        return self.prefix + name in self.names

    def read(self, name):
        try:
            return self.zip.read(self.prefix + name)
        except (KeyError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
            raise LegacyPtlError(f"{self.path}: cannot read {name} ({err}); truncated file?") from None

    def load_pickle(self, name, storage_dirs):
        try:
            return _Unpickler(self.read(name), self, name, storage_dirs).load()
        except LegacyPtlError:
            raise
        except Exception as err:  # any malformed pickle
            raise LegacyPtlError(f"{self.path}: malformed {name} ({type(err).__name__}: {err})") from None

    def storage(self, key, dtype, numel, dirs):
        """The flat tensor stored as `<dir><key>`, shared by every pickle that names it."""
        name = next((d + key for d in dirs if self.has(d + key)), None)
        if name is None:
            raise LegacyPtlError(f"{self.path}: tensor storage {key} missing (looked in {', '.join(dirs)})")
        if name not in self._storages:
            raw = self.read(name)
            itemsize = torch.empty((), dtype=dtype).element_size()
            if len(raw) != numel * itemsize:
                raise LegacyPtlError(f"{self.path}: storage {name} has {len(raw)} bytes, expected {numel * itemsize}")
            self._storages[name] = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return self._storages[name]

    def code_texts(self):
        return {n[len(self.prefix):]: self.read(n[len(self.prefix):]).decode("utf-8", "replace")
                for n in sorted(self.names) if n.startswith(self.prefix + "code/") and n.endswith(".py")}


@dataclass
class _Program:
    method: str
    version: object
    inputs: list  # [(name, type)]
    returns: list
    nodes: list
    output: tuple
    tensors: dict
    modules: dict
    stored_shape: object  # (shape, source) when the archive records the input shape
    code: dict


def _read_program(path):
    """Read a lite-interpreter archive and decode its forward method."""
    archive = _Archive(path)
    with archive.zip:
        if not archive.has("bytecode.pkl"):
            raise LegacyPtlError(f"{path}: TorchScript archive without bytecode.pkl (not a lite-interpreter .ptl)")
        if archive.has("byteorder") and archive.read("byteorder").strip() not in (b"", b"little"):
            raise LegacyPtlError(f"{path}: big-endian archives are not supported")
        root = archive.load_pickle("data.pkl", ("data/",))
        bytecode = archive.load_pickle("bytecode.pkl", ("constants/", "bytecode/", "data/"))
        traced = archive.load_pickle("traced_inputs.pkl", None) if archive.has("traced_inputs.pkl") else {}
        stored_shape = _stored_shape(archive) if archive.has(SHAPE_EXTRA_FILE) else None
        code = archive.code_texts()
    if not isinstance(root, ScriptObject):
        raise LegacyPtlError(f"{path}: data.pkl does not hold a TorchScript module")
    version, methods = (bytecode[0], bytecode[1:]) if isinstance(bytecode[0], int) else (None, bytecode)
    wanted = f"{root.qualified_name}.forward"
    entry = next((m for m in methods if isinstance(m, tuple) and m and m[0] == wanted), None)
    if entry is None:
        raise LegacyPtlError(f"{path}: bytecode.pkl has no method {wanted}")
    table = dict(entry[1])
    schema = {k: [dict(a) for a in v] for k, v in entry[2]} if len(entry) > 2 else None
    if schema:
        inputs = [(a["name"], a["type"]) for a in schema["arguments"][1:]]
        returns = [a["type"] for a in schema["returns"]]
    else:
        inputs, returns = [(f"input{i}", "?") for i in range(table["instructions"][0][2] - 1)], ["?"]
    binder = Binder()
    nodes, output = decode_forward(table, len(inputs), root, binder)
    traced_inputs = traced.get("forward") if isinstance(traced, dict) else None
    first = traced_inputs[0] if isinstance(traced_inputs, list) and traced_inputs else None
    if stored_shape is None and isinstance(first, torch.Tensor):
        stored_shape = (tuple(first.shape), "recorded in traced_inputs.pkl")
    return _Program(wanted, version, inputs, returns, nodes, output, binder.tensors, binder.modules,
                    stored_shape, code)


def _stored_shape(archive):
    """(shape, source) from the input-shape extra file our converters add; LegacyPtlError if malformed."""
    try:
        shape = tuple(json.loads(archive.read(SHAPE_EXTRA_FILE)))
    except (ValueError, TypeError):
        shape = ()
    if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise LegacyPtlError(f"{archive.path}: malformed {SHAPE_EXTRA_FILE}")
    return shape, f"recorded in {SHAPE_EXTRA_FILE}"


def _code_location(program, name):
    """' (code/...py line N)' for the first source line calling op `name`, else ''."""
    base = name.split("::")[-1]
    needles = (f"torch.{base}(", f"ops.{name.split('::')[0]}.{base}(")
    for file, text in program.code.items():
        for number, line in enumerate(text.splitlines(), 1):
            if any(needle in line for needle in needles):
                return f" ({file} line {number})"
    return ""


def _check_supported(program):
    """Raise LegacyPtlError for the first op or value the rebuilt module could not reproduce."""
    if len(program.inputs) != 1:
        raise LegacyPtlError(f"forward takes {len(program.inputs)} inputs; only single-input models are supported")
    for node in program.nodes:
        where = f"at bytecode instruction {node.index}{_code_location(program, node.name)}"
        if node.kernel is None:
            raise LegacyPtlError(f"unsupported op {node.op} {where}")
        objects = [r[1] for a in node.args for r in iter_refs(a) if r[0] == "obj"]
        if objects:
            raise LegacyPtlError(f"op {node.op} {where} takes a module object {objects[0].qualified_name}")
        if node.name == "aten::batch_norm" and len(node.args) > 5 and node.args[5] == ("lit", True):
            raise LegacyPtlError(f"aten::batch_norm {where} was recorded in training mode")
    if any(r[0] == "obj" for r in iter_refs(program.output)):
        raise LegacyPtlError("forward returns a module object")


# ---------------------------------------------------------------- the rebuilt module
def _first_layer(node, program):
    """(weight, groups, is_linear) of a conv/linear node with a known weight, else None."""
    weight_ref = node.args[1] if len(node.args) > 1 else ("lit", None)
    if node.name.startswith("prepacked::") and weight_ref[0] == "module":
        layer = program.modules[weight_ref[1]]
        return layer.weight, getattr(layer, "groups", 1), isinstance(layer, PrepackedLinear)
    groups_at = {"aten::conv1d": 6, "aten::conv2d": 6, "aten::_convolution": 8}.get(node.name)
    if weight_ref[0] != "tensor" or (groups_at is None and node.name != "aten::linear"):
        return None
    if node.name == "aten::linear":
        return program.tensors[weight_ref[1]], 1, True
    if node.name == "aten::_convolution" and node.args[6] != ("lit", False):  # transposed
        return None
    groups = node.args[groups_at][1] if len(node.args) > groups_at and node.args[groups_at][0] == "lit" else 1
    return program.tensors[weight_ref[1]], groups, False


def _input_shape(program):
    """(shape, how it is known): recorded in the archive, else from the first layer's weight
    (None entries: not recorded), else None."""
    if program.stored_shape is not None:
        return program.stored_shape
    current, unsqueezed = ("input", 0), []
    for k, node in enumerate(program.nodes):
        if current not in [r for a in node.args for r in iter_refs(a)]:
            continue
        if node.args[0] != current:
            break
        if node.name == "aten::unsqueeze" and node.args[1][0] == "lit":
            current, unsqueezed = ("out", k), unsqueezed + [node.args[1][1]]
            continue
        layer = _first_layer(node, program)
        if layer is None or (layer[2] and unsqueezed):
            break
        weight, groups, is_linear = layer
        if is_linear:
            return (None, weight.shape[1]), "in_features of the first linear layer; None = not recorded"
        rank, channel_dim = weight.dim(), 1
        for dim in reversed(unsqueezed):  # map the conv's channel dim back through the unsqueezes
            dim = dim + rank if dim < 0 else dim
            if dim == channel_dim:
                return None, "not recorded"
            channel_dim, rank = channel_dim - (dim < channel_dim), rank - 1
        shape = [None] * rank
        shape[channel_dim] = weight.shape[1] * groups
        return tuple(shape), "channels of the first convolution; None = not recorded"
    return None, "not recorded"


def _format_ref(ref, inputs):
    kind = ref[0]
    if kind == "input":
        return inputs[ref[1]][0]
    if kind == "out":
        return f"%{ref[1]}"
    if kind == "item":
        return f"{_format_ref(ref[1], inputs)}[{ref[2]}]"
    if kind in ("list", "tuple"):
        items = ", ".join(_format_ref(r, inputs) for r in ref[1])
        return f"[{items}]" if kind == "list" else f"({items})"
    if kind == "obj":
        return f"<{ref[1].qualified_name}>"
    return ref[1] if kind in ("tensor", "module") else repr(ref[1])


def _op_summary(program):
    return [f"%{k} = {node.op}({', '.join(_format_ref(a, program.inputs) for a in node.args)})"
            for k, node in enumerate(program.nodes)]


class LegacyModel(torch.nn.Module):
    """Eager rebuild of a legacy .ptl forward; replays the decoded op list with aten calls.

    `input_shape`: the full input shape when the archive records it, else None;
    `input_shape_hint`: what is known (None entries: not recorded, e.g. (None, 1, None) from the
    first convolution's channels), or None; `op_summary`: one line per op, `%k = op(args)`.
    """

    def __init__(self, program):
        super().__init__()
        for name, tensor in program.tensors.items():
            self.register_buffer(name, tensor)
        for name, module in program.modules.items():
            self.add_module(name, module)
        self._nodes, self._output = program.nodes, program.output
        self.input_shape_hint = _input_shape(program)[0]
        complete = self.input_shape_hint is not None and None not in self.input_shape_hint
        self.input_shape = self.input_shape_hint if complete else None
        self.op_summary = _op_summary(program)
        self.eval()

    def _resolve(self, ref, x, values):
        kind = ref[0]
        if kind == "input":
            return x
        if kind == "out":
            return values[ref[1]]
        if kind in ("tensor", "module"):
            return getattr(self, ref[1])
        if kind == "lit":
            return ref[1]
        if kind == "item":
            return self._resolve(ref[1], x, values)[ref[2]]
        items = [self._resolve(r, x, values) for r in ref[1]]
        return items if kind == "list" else tuple(items)

    def forward(self, x):
        values = []
        for node in self._nodes:
            values.append(node.kernel(*[self._resolve(a, x, values) for a in node.args]))
        return self._resolve(self._output, x, values)


# ---------------------------------------------------------------- public API
def is_legacy_ptl(path):
    """True when the zip at `path` holds XNNPACK prepacked ops or OpContext classes (no rebuild)."""
    markers = (b"prepacked::", b"torch.classes.xnnpack", b"ops.prepacked.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist()
                     if n.endswith(("/bytecode.pkl", "/constants.pkl")) or ("/code/" in n and n.endswith(".py"))]
            return any(marker in archive.read(n) for n in names for marker in markers)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        return False


def load_legacy_ptl(path):
    """Rebuild the legacy .ptl at `path` as an eval-mode LegacyModel; LegacyPtlError if impossible."""
    program = _read_program(path)
    _check_supported(program)
    return LegacyModel(program)


def describe_legacy_ptl(path):
    """Multi-line listing of a .ptl: recorded inputs/outputs, ops in order, weights and constants."""
    program = _read_program(path)
    shape, how = _input_shape(program)
    legacy = bool(program.modules) or any(n.name.startswith("prepacked::") for n in program.nodes)
    lines = [f"{Path(path).name}: lite-interpreter bytecode v{program.version}, method {program.method}",
             f"XNNPACK prepacked ops (legacy): {'yes' if legacy else 'no'}",
             "inputs: " + ", ".join(f"{name}: {type_}" for name, type_ in program.inputs),
             "returns: " + ", ".join(program.returns),
             f"input shape: {shape} ({how})",
             f"ops ({len(program.nodes)}):"]
    for node, line in zip(program.nodes, _op_summary(program)):
        lines.append(f"  {line}" + ("" if node.kernel else "   <-- unsupported"))
    lines += [f"  return {_format_ref(program.output, program.inputs)}", "weights and constants:"]
    lines += [f"  {name}: {module.extra_repr()}" for name, module in program.modules.items()]
    lines += [f"  {name}: tensor {tuple(t.shape)} {str(t.dtype).replace('torch.', '')}"
              for name, t in program.tensors.items()]
    return "\n".join(lines)
