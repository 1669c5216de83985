"""The export core's public face for your own scripts: eager model -> verified `.ptl` / `.pte`.

    from exportUtils import model_from_checkpoint, reference_windows, export_pte
    model, shape, _ = model_from_checkpoint("model.pt")
    export_pte(model, shape, "model.pte", inputs=reference_windows(shape))

The code lives in osdkit.export.exportCore (.pte export, lowering, running, verifying) and ptlExport (.ptl),
osdkit.model (checkpoints) and osdkit.sim (the realistic windows every export is verified on).
"""
from osdkit.export.exportCore import (PARITY_TOLERANCE, ExportError, compare_outputs, export_pte, load_pte_method,
                                      run_pte)
from osdkit.export.ptlExport import export_ptl, load_torchscript, run_ptl
from osdkit.model.checkpoints import model_from_checkpoint
from osdkit.sim.osdbSim import reference_windows

__all__ = ["PARITY_TOLERANCE", "ExportError", "compare_outputs", "export_pte", "export_ptl", "load_pte_method",
           "load_torchscript", "model_from_checkpoint", "reference_windows", "run_pte", "run_ptl"]
