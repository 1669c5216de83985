"""The bytecode side of legacyPtl: decode a lite-interpreter forward into whitelisted op nodes.

`decode_forward` runs the forward method's instructions on symbolic refs instead of values
(the bytecode of a traced, frozen model is a straight line), which yields a list of `Node`s:
operator name, argument refs and the kernel that reproduces it with plain aten / functional
calls. XNNPACK OpContexts become `PrepackedConv2d` / `PrepackedLinear` layers.

A ref is a tuple: ("input", i), ("out", node), ("item", ref, j), ("tensor", buffer name),
("module", layer name), ("lit", python value), ("list" | "tuple", [refs]), ("obj", ScriptObject, path).
"""
import math
import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F


class LegacyPtlError(ValueError):
    """A legacy .ptl file cannot be read or rebuilt; the message is one line."""


class ScriptObject:
    """A pickled TorchScript object (module or custom class) kept as its raw state."""
    qualified_name = "?"
    state = None

    def __setstate__(self, state):
        self.state = state


_script_classes = {}


def script_class(qualified_name):
    """One ScriptObject subclass per TorchScript class name, so pickle's NEWOBJ works."""
    if qualified_name not in _script_classes:
        short = qualified_name.rsplit(".", 1)[-1]
        _script_classes[qualified_name] = type(short, (ScriptObject,), {"qualified_name": qualified_name})
    return _script_classes[qualified_name]


# ---------------------------------------------------------------- XNNPACK OpContexts as layers
def _clamp(y, low, high):
    """The clamp fused into a prepacked op; None (or an infinite bound) means no bound."""
    low = None if low is None or low == -math.inf else float(low)
    high = None if high is None or high == math.inf else float(high)
    return y if low is None and high is None else torch.clamp(y, low, high)


def _frozen_parameter(tensor):
    return None if tensor is None else torch.nn.Parameter(tensor.float(), requires_grad=False)


def _shape(tensor):
    return None if tensor is None else tuple(tensor.shape)


class PrepackedConv2d(torch.nn.Module):
    """prepacked::conv2d_clamp_run from a Conv2dOpContext state
    (weight OIHW, bias, stride, padding, dilation, groups, output_min, output_max)."""

    def __init__(self, state):
        super().__init__()
        if len(state) != 8 or not isinstance(state[0], torch.Tensor) or state[0].dim() != 4:
            raise LegacyPtlError("unexpected Conv2dOpContext state")
        weight, bias, self.stride, self.padding, self.dilation, self.groups, self.low, self.high = state
        self.weight, self.bias = _frozen_parameter(weight), _frozen_parameter(bias)

    def forward(self, x):
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return _clamp(y, self.low, self.high)

    def extra_repr(self):
        return (f"Conv2dOpContext weight {tuple(self.weight.shape)}, bias {_shape(self.bias)}, "
                f"stride {list(self.stride)}, padding {list(self.padding)}, dilation {list(self.dilation)}, "
                f"groups {self.groups}, clamp ({self.low}, {self.high})")


class PrepackedLinear(torch.nn.Module):
    """prepacked::linear_clamp_run from a LinearOpContext state (weight, bias, output_min, output_max)."""

    def __init__(self, state):
        super().__init__()
        if len(state) != 4 or not isinstance(state[0], torch.Tensor) or state[0].dim() != 2:
            raise LegacyPtlError("unexpected LinearOpContext state")
        weight, bias, self.low, self.high = state
        self.weight, self.bias = _frozen_parameter(weight), _frozen_parameter(bias)

    def forward(self, x):
        return _clamp(F.linear(x, self.weight, self.bias), self.low, self.high)

    def extra_repr(self):
        return (f"LinearOpContext weight {tuple(self.weight.shape)}, bias {_shape(self.bias)}, "
                f"clamp ({self.low}, {self.high})")


_XNNPACK = "__torch__.torch.classes.xnnpack."
_CONTEXTS = {_XNNPACK + "Conv2dOpContext": ("conv2d", PrepackedConv2d),
             _XNNPACK + "LinearOpContext": ("linear", PrepackedLinear)}


# ---------------------------------------------------------------- the op whitelist
ATEN_OPS = frozenset("""
    _convolution conv1d conv2d linear addmm matmul mm
    relu relu6 hardtanh clamp clamp_min clamp_max sigmoid tanh softmax log_softmax
    hardswish hardsigmoid leaky_relu gelu silu elu
    max_pool1d max_pool2d avg_pool1d avg_pool2d adaptive_avg_pool1d adaptive_avg_pool2d
    adaptive_max_pool1d adaptive_max_pool2d mean sum add sub mul div rsub neg
    flatten reshape view permute transpose t squeeze unsqueeze cat stack contiguous select slice
    batch_norm""".split())
_DROPOUTS = {"aten::dropout", "aten::feature_dropout", "aten::alpha_dropout", "aten::feature_alpha_dropout"}
_SCALAR_OVERLOADS = {"int", "float", "int_float", "float_int", "Scalar_Scalar"}
_SCALAR_OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
               "floordiv": operator.floordiv}
PYTHON_OPS = {
    "prim::NumToTensor": lambda value: value,  # kept a Python number so shapes stay static
    "aten::Int": int, "aten::Float": float, "aten::len": len,
    "aten::__getitem__": operator.getitem,
    "aten::size": lambda tensor, dim=None: list(tensor.shape) if dim is None else tensor.size(dim),
    "prepacked::conv2d_clamp_run": lambda x, layer: layer(x),
    "prepacked::linear_clamp_run": lambda x, layer: layer(x),
}


def adaptive_avg_pool(op):
    """adaptive_avg_pool1d/2d as avg_pool with kernel = stride = input / output size where that divides:
    the same averages, in an op the app's ExecuTorch 1.0.1 runtime runs inside the XNNPACK delegate (it
    has no kernel for the _adaptive_avg_pool2d that export leaves outside: "Missing operator" on the
    phone). Other sizes keep the aten op, which the phone check then reports."""
    def pool(x, output_size):
        sizes = [output_size] if isinstance(output_size, int) else list(output_size)
        dims = list(x.shape[-len(sizes):])
        if any(d % out for d, out in zip(dims, sizes)):
            return op(x, output_size)
        kernel = [d // out for d, out in zip(dims, sizes)]
        avg_pool = torch.nn.functional.avg_pool1d if len(sizes) == 1 else torch.nn.functional.avg_pool2d
        return avg_pool(x, kernel, kernel)
    return pool


PYTHON_OPS.update({f"aten::adaptive_avg_pool{n}d": adaptive_avg_pool(getattr(torch.ops.aten, f"adaptive_avg_pool{n}d"))
                   for n in (1, 2)})


def _aten_overload(name, overload):
    try:
        return getattr(getattr(torch.ops.aten, name[len("aten::"):]), overload or "default")
    except (AttributeError, RuntimeError):
        return None


def _schema_caller(op):
    """Call an aten overload with bytecode's positional arguments (keyword-only ones included)."""
    arguments = op._schema.arguments
    n_positional = sum(not a.kwarg_only for a in arguments)
    keywords = [a.name for a in arguments if a.kwarg_only]

    def call(*args):
        return op(*args[:n_positional], **dict(zip(keywords, args[n_positional:])))
    return call


def lookup_kernel(name, overload):
    """(callable, or None when not whitelisted; number of outputs) for one bytecode operator."""
    if name in PYTHON_OPS:
        return PYTHON_OPS[name], 1
    if name.rstrip("_") in _DROPOUTS:  # eval mode: identity
        return lambda x, *_: x, 1
    base = name[len("aten::"):] if name.startswith("aten::") else None
    if base in _SCALAR_OPS and overload in _SCALAR_OVERLOADS:
        return _SCALAR_OPS[base], 1
    op = _aten_overload(name, overload) if base else None
    if op is None:
        return None, 1
    supported = base.rstrip("_") in ATEN_OPS  # in-place variants (relu_) included
    return (_schema_caller(op) if supported else None), len(op._schema.returns)


def _arg_count(entry):
    """Arguments an operator entry pops; bytecode < v6 omits the count: then the full schema."""
    name, overload = entry[0], entry[1]
    if len(entry) > 2 and entry[2] is not None and entry[2] >= 0:
        return entry[2]
    if name.startswith("prepacked::"):
        return 2
    op = _aten_overload(name, overload)
    if op is None:
        raise LegacyPtlError(f"bytecode gives no argument count for unknown op {name}")
    return len(op._schema.arguments)


# ---------------------------------------------------------------- decoding
@dataclass
class Node:
    index: int  # bytecode instruction
    name: str
    overload: str
    args: list
    kernel: object  # None: not whitelisted

    @property
    def op(self):
        return f"{self.name}.{self.overload}" if self.overload else self.name


class Binder:
    """Turns constants and attributes into refs; collects the tensors and layers they hold."""

    def __init__(self):
        self.tensors, self.modules, self._seen = {}, {}, {}

    def bind(self, value, name):
        if id(value) in self._seen:
            return self._seen[id(value)]
        ref = self._make(value, name)
        if isinstance(value, (torch.Tensor, ScriptObject)):
            self._seen[id(value)] = ref
        return ref

    def _make(self, value, name):
        if isinstance(value, torch.Tensor):
            self.tensors[name] = value.float() if value.is_floating_point() else value
            return ("tensor", name)
        if isinstance(value, ScriptObject) and value.qualified_name in _CONTEXTS:
            kind, layer = _CONTEXTS[value.qualified_name]
            module_name = f"{kind}{sum(k.startswith(kind) for k in self.modules)}"
            self.modules[module_name] = layer(value.state)
            return ("module", module_name)
        if isinstance(value, ScriptObject):
            if value.qualified_name.startswith("__torch__.torch.classes."):
                raise LegacyPtlError(f"unsupported custom class {value.qualified_name[len('__torch__.'):]}")
            return ("obj", value, name)
        if isinstance(value, (list, tuple)) and any(isinstance(v, (torch.Tensor, ScriptObject)) for v in value):
            kind = "list" if isinstance(value, list) else "tuple"
            return (kind, [self.bind(v, f"{name}_{j}") for j, v in enumerate(value)])
        return ("lit", value)

    def attribute(self, ref, slot):
        """GET_ATTR: a module object's attribute by slot (data.pkl keeps slot order)."""
        if ref[0] != "obj" or not isinstance(ref[1].state, dict) or slot >= len(ref[1].state):
            raise LegacyPtlError(f"GET_ATTR {slot} on something that is not a module object")
        key, value = list(ref[1].state.items())[slot]
        return self.bind(value, f"{ref[2]}_{key}")


_INSTRUCTIONS = set("STOREN STORE LOAD MOVE DROP DROPR LOADC OP OPN LIST_CONSTRUCT TUPLE_CONSTRUCT "
                    "LIST_UNPACK TUPLE_INDEX TUPLE_SLICE GET_ATTR RET".split())


def _pop(stack, n):
    items = stack[len(stack) - n:] if n else []
    del stack[len(stack) - n:]
    return items


def decode_forward(table, n_inputs, root, binder):
    """Run the forward bytecode (a dict of its code table) on refs: -> (nodes, output ref)."""
    operators, constants = table["operators"], table["constants"]
    stack = [("obj", root, "attr")] + [("input", i) for i in range(n_inputs)]
    registers, nodes = {}, []
    for i, (code, x, n) in enumerate(table["instructions"]):
        if code not in _INSTRUCTIONS:
            raise LegacyPtlError(f"unsupported bytecode instruction {code} at instruction {i} "
                                 f"(control flow and method calls cannot be rebuilt)")
        try:
            if code in ("STORE", "STOREN"):
                for r in reversed(range(x, x + (n if code == "STOREN" else 1))):
                    registers[r] = stack.pop()
            elif code in ("LOAD", "MOVE"):
                stack.append(registers[x] if code == "LOAD" else registers.pop(x))
            elif code == "DROP":
                stack.pop()
            elif code == "DROPR":
                registers.pop(x, None)
            elif code == "LOADC":
                stack.append(binder.bind(constants[x], f"const{x}"))
            elif code in ("OP", "OPN"):
                name, overload = operators[x][0], operators[x][1]
                args = _pop(stack, n if code == "OPN" else _arg_count(operators[x]))
                kernel, n_out = lookup_kernel(name, overload)
                nodes.append(Node(i, name, overload, args, kernel))
                out = ("out", len(nodes) - 1)
                stack.extend([out] if n_out == 1 else [("item", out, j) for j in range(n_out)])
            elif code in ("LIST_CONSTRUCT", "TUPLE_CONSTRUCT"):
                stack.append(("list" if code == "LIST_CONSTRUCT" else "tuple", _pop(stack, n)))
            elif code == "LIST_UNPACK":
                seq = stack.pop()
                stack.extend(seq[1] if seq[0] in ("list", "tuple") else [("item", seq, j) for j in range(n)])
            elif code == "TUPLE_INDEX":
                index, seq = stack.pop(), stack.pop()
                if index[0] != "lit":
                    raise LegacyPtlError(f"TUPLE_INDEX with a computed index at instruction {i}")
                stack.append(seq[1][index[1]] if seq[0] == "tuple" else ("item", seq, index[1]))
            elif code == "TUPLE_SLICE":
                stack.append(("tuple", stack.pop()[1][x:x + n]))
            elif code == "GET_ATTR":
                stack.append(binder.attribute(stack.pop(), x))
            elif code == "RET":
                return nodes, stack.pop()
        except (IndexError, KeyError, TypeError) as err:
            raise LegacyPtlError(f"malformed bytecode at instruction {i} ({code}): {err!r}") from None
    raise LegacyPtlError("bytecode of forward has no RET")


def iter_refs(ref):
    """A ref and every ref nested in it."""
    yield ref
    if ref[0] in ("list", "tuple"):
        for item in ref[1]:
            yield from iter_refs(item)
    elif ref[0] == "item":
        yield from iter_refs(ref[1])
