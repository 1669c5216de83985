"""DeepEpiCnn, the 1-D CNN of Spahr et al. (Epilepsia 2025), at the import path users know.

    from deepEpiCnn import DeepEpiCnn

The code lives in osdkit.model.deepEpiCnn; this name also lets whole-module checkpoints pickled as
`deepEpiCnn.DeepEpiCnn` load.
"""
from osdkit.model.deepEpiCnn import INPUT_NORMS, DeepEpiCnn, MeanMagnitudeNorm, model_from_state_dict

__all__ = ["INPUT_NORMS", "DeepEpiCnn", "MeanMagnitudeNorm", "model_from_state_dict"]
