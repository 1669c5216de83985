"""A writer of legacy XNNPACK lite `.ptl` archives as PyTorch <= 2.5's optimize_for_mobile made them (the
pickles, bytecode and prepacked op contexts), and three architectures synthesised with it, for
test_legacy_ptl.py: a test can build any archive the fixtures do not cover."""
import pickle
import struct
import zipfile
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


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
