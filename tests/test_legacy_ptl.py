"""legacyPtl: legacy XNNPACK .ptl files (fixtures and synthesised archives) rebuilt as exportable modules."""
import pickle
import struct
import warnings
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from osdkit.export import legacyPtl

from conftest import FIXTURES

TOLERANCE = 1e-4


# ---------------------------------------------------------------- a pickle writer modelled on the fixtures
@dataclass
class Global:  # GLOBAL 'module name'
    module: str
    name: str


@dataclass
class Call:  # fn args REDUCE
    fn: Global
    args: tuple


@dataclass
class Obj:  # cls EMPTY_TUPLE NEWOBJ state BUILD (how TorchScript objects and OpContexts are pickled)
    cls: Global
    state: object


@dataclass
class PersistentId:  # pid BINPERSID (tensor storages)
    pid: tuple


def _emit(obj, out):
    if obj is None or obj is True or obj is False:
        out += {None: b"N", True: b"\x88", False: b"\x89"}[obj]
    elif isinstance(obj, int):
        out += pickle.dumps(obj, 2)[2:-1]
    elif isinstance(obj, float):
        out += b"G" + struct.pack(">d", obj)
    elif isinstance(obj, str):
        out += b"X" + struct.pack("<I", len(obj.encode())) + obj.encode()
    elif isinstance(obj, (tuple, list, dict)):
        out += {tuple: b"(", list: b"](", dict: b"}("}[type(obj)]
        for item in (obj.items() if isinstance(obj, dict) else obj):
            for part in (item if isinstance(obj, dict) else (item,)):
                _emit(part, out)
        out += {tuple: b"t", list: b"e", dict: b"u"}[type(obj)]
    elif isinstance(obj, Global):
        out += f"c{obj.module}\n{obj.name}\n".encode()
    elif isinstance(obj, Call):
        _emit(obj.fn, out)
        _emit(obj.args, out)
        out += b"R"
    elif isinstance(obj, Obj):
        _emit(obj.cls, out)
        out += b")\x81"
        _emit(obj.state, out)
        out += b"b"
    elif isinstance(obj, PersistentId):
        _emit(obj.pid, out)
        out += b"Q"
    else:
        raise TypeError(obj)


def pickle_bytes(obj):
    out = bytearray(b"\x80\x02")
    _emit(obj, out)
    return bytes(out + b".")


def int_list(values):
    return Call(Global("torch.jit._pickle", "build_intlist"), (list(values),))


def schema_arg(name, type_):
    return ("name", name), ("type", type_), ("default_value", None)


# ---------------------------------------------------------------- a legacy .ptl writer
@dataclass(frozen=True)
class Reg:  # a bytecode register
    number: int


@dataclass(frozen=True)
class Attr:  # a module attribute (data.pkl), read with GET_ATTR
    path: tuple


class LegacyPtlBuilder:
    """Writes a lite-interpreter archive laid out like optimize_for_mobile output of PyTorch <= 2.5.

    Same entries as the fixtures (data.pkl, code/, constants.pkl + constants/N.storage shared with
    bytecode.pkl, version, byteorder); weights of modules that were not frozen go to data.pkl + data/.
    """
    MODULE = "__torch__.___torch_mangle_7"

    def __init__(self, class_name):
        self.class_name, self.x = class_name, Reg(2)
        self.body, self.operators, self.constants, self.types = [], [], [], []
        self.code, self.code_constants, self.storages, self._keys = [], [], {}, {}
        self.attributes, self.n_registers, self.uses_self = {"mobile_optimized": True}, 2, False

    # values
    def _tensor(self, tensor, folder):
        if id(tensor) not in self._keys:
            number = sum(f == folder for f, _ in self.storages)
            key = f"{number}.storage" if folder == "constants" else str(number)
            self.storages[folder, key] = tensor.detach().contiguous().numpy().tobytes()
            self._keys[id(tensor)] = (tensor, key)
        key = self._keys[id(tensor)][1]
        storage = {torch.float32: "FloatStorage", torch.int64: "LongStorage"}[tensor.dtype]
        pid = PersistentId(("storage", Global("torch", storage), key, "cpu", tensor.numel()))
        return Call(Global("torch._utils", "_rebuild_tensor_v2"),
                    (pid, 0, tuple(tensor.shape), tuple(tensor.contiguous().stride()), False,
                     Call(Global("collections", "OrderedDict"), ())))

    def conv_context(self, conv, low=None, high=None):
        weight = conv.weight.detach()
        state = (weight, conv.bias.detach(), int_list(conv.stride), int_list(conv.padding),
                 int_list(conv.dilation), conv.groups, low, high)
        return Obj(Global("__torch__.torch.classes.xnnpack", "Conv2dOpContext"), state)

    def linear_context(self, linear, low=None, high=None):
        bias = None if linear.bias is None else linear.bias.detach()
        return Obj(Global("__torch__.torch.classes.xnnpack", "LinearOpContext"),
                   (linear.weight.detach(), bias, low, high))

    def set_attribute(self, name, value):
        """A data.pkl attribute: a tensor, or a dict of tensors (a submodule)."""
        self.attributes[name] = value
        self.uses_self = True

    # instructions
    def _constant(self, value):
        key = (type(value), value) if not isinstance(value, (torch.Tensor, Obj, Call)) else id(value)
        for index, (k, _) in enumerate(self.constants):
            if k == key:
                return index
        self.constants.append((key, value))
        return len(self.constants) - 1

    def _push(self, arg):
        """Emit the pushes for one argument; return its TorchScript source text."""
        if isinstance(arg, Reg):
            self.body.append(("LOAD", arg.number, 0))
            return "x" if arg == self.x else f"_{arg.number}"
        if isinstance(arg, Attr):
            self.body.append(("LOAD", 1, 0))
            state = self.attributes
            for name in arg.path:
                self.body.append(("GET_ATTR", list(state).index(name), 0))
                state = state[name]
            return "self." + ".".join(arg.path)
        if isinstance(arg, list) and any(isinstance(a, (Reg, Attr, torch.Tensor)) for a in arg):
            texts = [self._push(a) for a in arg]
            self.types.append("List[int]" if isinstance(arg[-1], int) else "List[Tensor]")
            self.body.append(("LIST_CONSTRUCT", len(self.types) - 1, len(arg)))
            return f"[{', '.join(texts)}]"
        if isinstance(arg, (torch.Tensor, Obj)):
            if not any(arg is c for c in self.code_constants):
                self.code_constants.append(arg)
            index = next(i for i, c in enumerate(self.code_constants) if c is arg)
            self.body.append(("LOADC", self._constant(arg), 0))
            return f"CONSTANTS.c{index}"
        value = int_list(arg) if isinstance(arg, list) else arg
        self.body.append(("LOADC", self._constant(value), 0))
        return repr(arg)

    def op(self, name, overload, *args, n_out=1):
        """Emit OP for `name.overload(*args)`; return the result register(s)."""
        texts = [self._push(a) for a in args]
        entry = (name, overload, len(args))
        if entry not in self.operators:
            self.operators.append(entry)
        self.body.append(("OP", self.operators.index(entry), 0))
        first = self.n_registers + 1
        self.n_registers += n_out
        self.body.append(("STOREN", first, n_out) if n_out > 1 else ("STORE", first, 0))
        namespace, base = name.split("::")
        call = f"torch.{base}" if namespace == "aten" else f"ops.{namespace}.{base}"
        targets = ", ".join(f"_{first + j}" for j in range(n_out))
        self.code.append(f"    {targets} = {call}({', '.join(texts)})")
        results = [Reg(first + j) for j in range(n_out)]
        return results[0] if n_out == 1 else results

    def ret(self, *values):
        texts = [self._push(v) for v in values]
        if len(values) > 1:
            self.types.append(f"Tuple[{', '.join(['Tensor'] * len(values))}]")
            self.body.append(("TUPLE_CONSTRUCT", len(self.types) - 1, len(values)))
        self.body.append(("RET", 0, 0))
        self.code.append(f"    return ({', '.join(texts)})" if len(values) > 1 else f"    return {texts[0]}")
        self.return_type = self.types[-1] if len(values) > 1 else "Tensor"

    # the archive
    def _instructions(self):
        head = [("STOREN", 1, 2)] + ([] if self.uses_self else [("DROPR", 1, 0)])
        instructions, last_use_seen = head + self.body, set()
        for i in reversed(range(len(instructions))):  # the last LOAD of a register is a MOVE
            code, x, n = instructions[i]
            if code == "LOAD" and x not in last_use_seen:
                instructions[i] = ("MOVE", x, 0)
            if code in ("LOAD", "MOVE"):
                last_use_seen.add(x)
        return tuple(instructions)

    def _data_object(self, name, state):
        state = {k: self._data_object(k, v) if isinstance(v, dict) else
                 self._tensor(v.detach(), "data") if isinstance(v, torch.Tensor) else v
                 for k, v in state.items()}
        return Obj(Global(self.MODULE, name), state)

    def write(self, path):
        qualified = f"{self.MODULE}.{self.class_name}"

        def pickled(value):
            if isinstance(value, torch.Tensor):
                return self._tensor(value, "constants")
            if isinstance(value, Obj):  # OpContext: its tensors go to constants/ too
                return Obj(value.cls, tuple(pickled(v) for v in value.state))
            return value
        table = (("instructions", self._instructions()), ("operators", tuple(self.operators)),
                 ("constants", tuple(pickled(v) for _, v in self.constants)), ("types", tuple(self.types)),
                 ("register_size", self.n_registers))
        schema = (("arguments", (schema_arg("self", qualified), schema_arg("x", "Tensor"))),
                  ("returns", (schema_arg("", self.return_type),)))
        source = "\n".join([f"class {self.class_name}(Module):", "  __parameters__ = []", "  __buffers__ = []",
                            "  mobile_optimized : bool", f"  def forward(self: {qualified},",
                            f"    x: Tensor) -> {self.return_type}:", *self.code, ""])
        entries = {"data.pkl": pickle_bytes(self._data_object(self.class_name, self.attributes)),
                   f"code/__torch__/{self.MODULE.split('.')[1]}.py": source.encode(),
                   "code/__torch__/torch/classes/xnnpack.py": b"",
                   "constants.pkl": pickle_bytes(tuple(pickled(v) for v in self.code_constants)),
                   "bytecode.pkl": pickle_bytes((8, (f"{qualified}.forward", table, schema))),
                   "version": b"3\n", "byteorder": b"little", ".data/serialization_id": b"1" * 40}
        with zipfile.ZipFile(path, "w") as archive:
            for (folder, key), data in self.storages.items():
                archive.writestr(f"legacy/{folder}/{key}", data)
            for name, data in entries.items():
                archive.writestr(f"legacy/{name}", data)
        return path


# ---------------------------------------------------------------- synthesised architectures
def cnn2d_maxpool_hardtanh():
    torch.manual_seed(1)
    conv1, conv2, fc = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 6, 3, stride=2, padding=1, groups=2), nn.Linear(6, 3)
    b = LegacyPtlBuilder("Cnn2d")
    h = b.op("prepacked::conv2d_clamp_run", "", b.x, b.conv_context(conv1, 0.0, 6.0))
    h = b.op("aten::max_pool2d", "", h, [2, 2], [2, 2], [0, 0], [1, 1], False)
    h = b.op("prepacked::conv2d_clamp_run", "", h, b.conv_context(conv2, -1.0, 1.0))
    h = b.op("aten::adaptive_avg_pool2d", "", h, [1, 1])
    h = b.op("aten::flatten", "using_ints", h, 1)
    b.ret(b.op("prepacked::linear_clamp_run", "", h, b.linear_context(fc)))

    def reference(x):
        h = F.max_pool2d(F.hardtanh(conv1(x), 0.0, 6.0), 2)
        h = F.adaptive_avg_pool2d(F.hardtanh(conv2(h), -1.0, 1.0), 1)
        return fc(torch.flatten(h, 1))
    return b, reference, torch.randn(5, 3, 16, 16), (None, 3, None, None)


def mlp_linear_clamp_log_softmax():
    torch.manual_seed(2)
    fc1, fc2 = nn.Linear(20, 32), nn.Linear(32, 4, bias=False)
    b = LegacyPtlBuilder("Mlp")
    h = b.op("prepacked::linear_clamp_run", "", b.x, b.linear_context(fc1, 0.0, float("inf")))
    h = b.op("aten::dropout", "", h, 0.25, False)
    h = b.op("prepacked::linear_clamp_run", "", h, b.linear_context(fc2))
    b.ret(b.op("aten::log_softmax", "int", h, 1, None))
    return b, lambda x: F.log_softmax(fc2(torch.relu(fc1(x))), 1), torch.randn(7, 20), (None, 20)


def conv1d_residual_cat_attributes():
    """1-D conv via unsqueeze, residual add, in-place relu, cat, and weights kept as data.pkl attributes."""
    torch.manual_seed(3)
    conv, bn, head = nn.Conv2d(4, 4, (1, 3), padding=(0, 1)), nn.BatchNorm1d(8), nn.Linear(8 * 16, 3)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 2)
    scale = torch.tensor([1.0, 2.0, 0.5])
    b = LegacyPtlBuilder("ResNet1d")
    b.set_attribute("bn", {"training": False, "weight": bn.weight, "bias": bn.bias,
                           "running_mean": bn.running_mean, "running_var": bn.running_var})
    b.set_attribute("head", {"training": False, "weight": head.weight, "bias": head.bias})
    h = b.op("aten::unsqueeze", "", b.x, 2)
    h = b.op("prepacked::conv2d_clamp_run", "", h, b.conv_context(conv))
    h = b.op("aten::squeeze", "dim", h, 2)
    h = b.op("aten::relu_", "", b.op("aten::add", "Tensor", h, b.x, 1))
    h = b.op("aten::cat", "", [h, b.x], 1)
    h = b.op("aten::batch_norm", "", h, Attr(("bn", "weight")), Attr(("bn", "bias")), Attr(("bn", "running_mean")),
             Attr(("bn", "running_var")), False, 0.1, 1e-5, True)
    h = b.op("aten::max_pool1d", "", h, [2], [2], [0], [1], False)
    h = b.op("aten::view", "", h, [b.op("aten::size", "int", h, 0), -1])
    y = b.op("aten::linear", "", h, Attr(("head", "weight")), Attr(("head", "bias")))
    b.ret(b.op("aten::softmax", "int", b.op("aten::mul", "Tensor", y, scale), 1, None), y)

    def reference(x):
        h = torch.relu(conv(x.unsqueeze(2)).squeeze(2) + x)
        h = F.batch_norm(torch.cat([h, x], 1), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.1, 1e-5)
        h = F.max_pool1d(h, 2)
        y = head(h.view(h.size(0), -1))
        return torch.softmax(y * scale, 1), y
    return b, reference, torch.randn(6, 4, 32), (None, 4, None)


SYNTHESISED = [cnn2d_maxpool_hardtanh, mlp_linear_clamp_log_softmax, conv1d_residual_cat_attributes]


def max_diff(actual, expected):
    """Max abs difference over one output tensor or a tuple of them."""
    actual, expected = [(v,) if isinstance(v, torch.Tensor) else tuple(v) for v in (actual, expected)]
    assert len(actual) == len(expected)
    return max(float((a - e).abs().max()) for a, e in zip(actual, expected))


def fixture(name):
    io = np.load(FIXTURES / f"legacy_{name}_io.npz")
    return FIXTURES / f"legacy_{name}.ptl", torch.from_numpy(io["inputs"]), torch.from_numpy(io["outputs"])


# ---------------------------------------------------------------- the fixtures
@pytest.mark.parametrize("name", ["deepepicnn", "smallnet"])
def test_fixture_rebuilt_matches_pytorch_2_5(name):
    path, inputs, outputs = fixture(name)
    assert legacyPtl.is_legacy_ptl(path)
    model = legacyPtl.load_legacy_ptl(path)
    assert isinstance(model, torch.nn.Module) and not model.training
    assert model.input_shape is None and model.input_shape_hint == (None, 1, None)  # length not recorded
    assert any("prepacked::conv2d_clamp_run" in line for line in model.op_summary)
    assert all(p.dtype == torch.float32 for p in list(model.parameters()) + list(model.buffers()))
    with torch.no_grad():
        assert max_diff(model(inputs), outputs) < TOLERANCE
        exported = torch.export.export(model, (inputs,))
        assert max_diff(exported.module()(inputs), outputs) < TOLERANCE


@pytest.mark.parametrize("name", ["deepepicnn", "smallnet"])
def test_fixture_through_executorch_xnnpack(name):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime
    path, inputs, outputs = fixture(name)
    exported = torch.export.export(legacyPtl.load_legacy_ptl(path), (inputs,))
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    method = Runtime.get().load_program(program.buffer).load_method("forward")
    assert max_diff(method.execute([inputs])[0], outputs) < TOLERANCE


def test_describe_lists_ops_weights_and_io():
    text = legacyPtl.describe_legacy_ptl(FIXTURES / "legacy_smallnet.ptl")
    assert "inputs: x: Tensor" in text and "returns: Tensor" in text
    assert "input shape: (None, 1, None)" in text
    assert "%1 = prepacked::conv2d_clamp_run(%0, conv2d0)" in text
    assert "Conv2dOpContext weight (12, 1, 1, 9), bias (12,), stride [1, 3]" in text
    assert "%7 = aten::softmax.int(%6, 1)" in text
    assert text.count("\n") > 10 and "unsupported" not in text


# ---------------------------------------------------------------- synthesised layouts
def test_synthesiser_reproduces_the_smallnet_fixture(tmp_path):
    """The writer below is faithful: SmallNet rewritten with it decodes to the same program."""
    path, inputs, outputs = fixture("smallnet")
    original = legacyPtl.load_legacy_ptl(path)
    conv, fc = nn.Conv2d(1, 12, (1, 9), stride=(1, 3)), nn.Linear(48, 2)
    conv.weight.data, conv.bias.data = original.conv2d0.weight.clone(), original.conv2d0.bias.clone()
    fc.weight.data, fc.bias.data = original.linear0.weight.clone(), original.linear0.bias.clone()
    b = LegacyPtlBuilder("SmallNet")
    h = b.op("prepacked::conv2d_clamp_run", "", b.op("aten::unsqueeze", "", b.x, 2), b.conv_context(conv))
    h = b.op("aten::hardtanh", "", b.op("aten::squeeze", "dim", h, 2), 0.0, 6.0)
    h = b.op("aten::flatten", "using_ints", b.op("aten::adaptive_avg_pool1d", "", h, [4]), 1)
    b.ret(b.op("aten::softmax", "int", b.op("prepacked::linear_clamp_run", "", h, b.linear_context(fc)), 1))
    rebuilt = legacyPtl.load_legacy_ptl(b.write(tmp_path / "smallnet.ptl"))
    assert rebuilt.op_summary == original.op_summary
    with torch.no_grad():
        assert max_diff(rebuilt(inputs), outputs) < TOLERANCE


@pytest.mark.parametrize("case", SYNTHESISED, ids=lambda case: case.__name__)
def test_synthesised_architecture_matches_eager(case, tmp_path):
    builder, reference, x, input_shape = case()
    path = builder.write(tmp_path / f"{case.__name__}.ptl")
    assert legacyPtl.is_legacy_ptl(path)
    model = legacyPtl.load_legacy_ptl(path)
    assert model.input_shape is None and model.input_shape_hint == input_shape
    with torch.no_grad():
        expected = reference(x)
        assert max_diff(model(x), expected) < TOLERANCE
        exported = torch.export.export(model, (x,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}}).module()
        assert max_diff(exported(x), expected) < TOLERANCE
        assert max_diff(exported(x[:2]), reference(x[:2])) < TOLERANCE
        assert max_diff(model(x), expected) < TOLERANCE  # in-place ops did not touch weights or x
    assert "unsupported" not in legacyPtl.describe_legacy_ptl(path)


def test_shared_context_is_one_layer(tmp_path):
    torch.manual_seed(5)
    fc = nn.Linear(8, 8)
    b = LegacyPtlBuilder("Tied")
    context = b.linear_context(fc, -2.0, 2.0)
    b.ret(b.op("prepacked::linear_clamp_run", "", b.op("prepacked::linear_clamp_run", "", b.x, context), context))
    model = legacyPtl.load_legacy_ptl(b.write(tmp_path / "tied.ptl"))
    assert [name for name, _ in model.named_children()] == ["linear0"]
    x = torch.randn(4, 8)
    with torch.no_grad():
        assert max_diff(model(x), F.hardtanh(fc(F.hardtanh(fc(x), -2, 2)), -2, 2)) < TOLERANCE


def test_recorded_input_shape_extra_file(tmp_path):
    builder = cnn2d_maxpool_hardtanh()[0]
    for name, text in [("good.ptl", "[1, 3, 16, 16]"), ("bad.ptl", "[1, -3]")]:
        with zipfile.ZipFile(builder.write(tmp_path / name), "a") as archive:
            archive.writestr("legacy/extra/osd_input_shape.json", text)
    assert legacyPtl.load_legacy_ptl(tmp_path / "good.ptl").input_shape == (1, 3, 16, 16)
    expect_error(tmp_path / "bad.ptl", "malformed extra/osd_input_shape.json")


def test_attribute_weights_become_buffers(tmp_path):
    builder, *_ = conv1d_residual_cat_attributes()
    model = legacyPtl.load_legacy_ptl(builder.write(tmp_path / "res.ptl"))
    assert {"attr_bn_running_var", "attr_head_weight"} <= set(dict(model.named_buffers()))
    assert "conv2d0.weight" in dict(model.named_parameters())


def test_current_torch_lite_archive_without_prepacked_ops(tmp_path):
    """An un-optimised traced module as the lite interpreter writes it: GET_ATTR, data/, _convolution."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 3 * 3, 2), nn.Hardswish()).eval()
    x = torch.randn(3, 2, 8, 8)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.trace(model, x[:1])._save_for_lite_interpreter(str(tmp_path / "m.ptl"))
    except (AttributeError, RuntimeError) as err:
        pytest.skip(f"this torch cannot write lite-interpreter files: {err}")
    assert not legacyPtl.is_legacy_ptl(tmp_path / "m.ptl")
    rebuilt = legacyPtl.load_legacy_ptl(tmp_path / "m.ptl")
    assert rebuilt.input_shape == rebuilt.input_shape_hint == (1, 2, 8, 8)  # traced_inputs.pkl
    with torch.no_grad():
        assert max_diff(rebuilt(x), model(x)) < TOLERANCE


# ---------------------------------------------------------------- errors
def expect_error(path, *fragments):
    with pytest.raises(legacyPtl.LegacyPtlError) as info:
        legacyPtl.load_legacy_ptl(path)
    message = str(info.value)
    assert "\n" not in message and all(f in message for f in fragments), message
    return message


def copy_zip(src, dst, drop):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if not info.filename.endswith(drop):
                zout.writestr(info, zin.read(info))
    return dst


def test_truncated_and_text_files(tmp_path):
    data = (FIXTURES / "legacy_smallnet.ptl").read_bytes()
    (tmp_path / "cut.ptl").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.ptl").write_text("this is not a model\n")
    for name in ("cut.ptl", "notes.ptl"):
        expect_error(tmp_path / name, "not a zip archive")
        assert not legacyPtl.is_legacy_ptl(tmp_path / name)


def test_zip_that_is_not_torchscript(tmp_path):
    expect_error(FIXTURES / "legacy_deepepicnn.pt", "not a TorchScript archive")  # a torch.save checkpoint
    assert not legacyPtl.is_legacy_ptl(FIXTURES / "legacy_deepepicnn.pt")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    expect_error(tmp_path / "other.zip", "not a TorchScript archive")


def test_archive_parts_missing(tmp_path):
    src = FIXTURES / "legacy_smallnet.ptl"
    expect_error(copy_zip(src, tmp_path / "a.ptl", "bytecode.pkl"), "without bytecode.pkl")
    expect_error(copy_zip(src, tmp_path / "b.ptl", "constants/2.storage"), "storage 2.storage missing")


def test_unsupported_op_is_named_with_its_location(tmp_path):
    b = LegacyPtlBuilder("Rnn")
    h = b.op("prepacked::linear_clamp_run", "", b.x, b.linear_context(nn.Linear(5, 8)))
    params = [torch.randn(32, 8), torch.randn(32, 8)]
    out, _, _ = b.op("aten::lstm", "input", h, [torch.zeros(1, 3, 8)] * 2, params, False, 1, 0.0, False, False, True,
                     n_out=3)
    b.ret(out)
    path = b.write(tmp_path / "rnn.ptl")
    assert legacyPtl.is_legacy_ptl(path)
    expect_error(path, "unsupported op aten::lstm.input at bytecode instruction",
                 "code/__torch__/___torch_mangle_7.py line 8")
    assert "aten::lstm.input(%0, [" in legacyPtl.describe_legacy_ptl(path)
    assert "<-- unsupported" in legacyPtl.describe_legacy_ptl(path)


def test_control_flow_and_training_mode_are_refused(tmp_path):
    b = LegacyPtlBuilder("Loop")
    b.body.append(("JF", 3, 0))
    b.ret(b.x)
    expect_error(b.write(tmp_path / "loop.ptl"), "unsupported bytecode instruction JF")
    b = LegacyPtlBuilder("TrainBn")
    stats = [torch.ones(3), torch.zeros(3), torch.zeros(3), torch.ones(3)]
    b.ret(b.op("aten::batch_norm", "", b.x, *stats, True, 0.1, 1e-5, True))
    expect_error(b.write(tmp_path / "bn.ptl"), "aten::batch_norm", "training mode")
