"""legacyPtl: legacy XNNPACK .ptl files (fixtures and synthesised archives) rebuilt as exportable modules."""
import warnings
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from osdkit.export import legacyPtl

from conftest import FIXTURES
from legacyPtlBuilder import SYNTHESISED, LegacyPtlBuilder, cnn2d_maxpool_hardtanh, conv1d_residual_cat_attributes

TOLERANCE = 1e-4


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
