"""Static int8 for the XNNPACK backend (`--quantize int8`): PT2E quantisation calibrated on real windows
(exportCore.calibration_windows); exportCore.export_pte lowers and verifies the result like any other
model (|dp(seizure)| <= 0.15 on every window)."""
import warnings

import numpy as np
import torch


def quantize_int8(module, example, calibration):
    """PT2E static int8 for XNNPACK, calibrated on real windows (N, ...) in the model's layout."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = torch.export.export(module.eval(), (example,)).module()
        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(graph, quantizer)
        calibration = torch.as_tensor(np.ascontiguousarray(calibration))
        with torch.no_grad():
            for start in range(0, len(calibration), example.shape[0]):
                batch = calibration[start:start + example.shape[0]]
                if batch.shape[0] == example.shape[0]:
                    prepared(batch)
        return convert_pt2e(prepared)
