"""Check that a .pte gives the same outputs on another ExecuTorch runtime version (e.g. the app's 1.0.1).

    python checkPteRuntime.py model.pte --save ref.npz        # here: inputs + this runtime's outputs
    /path/to/other/venv/bin/python checkPteRuntime.py model.pte --compare ref.npz

`--save` needs this toolkit's environment (it draws realistic windows from osdbSim); `--compare` needs
only numpy, torch and executorch, so it runs in a separate environment holding the other runtime
(executorch 1.0.1 needs torch 2.9). Exit 0 when every logit agrees within --tolerance, else 1.
This compares runtimes on x86; phoneCheck.py runs the app's runtime on emulated phone CPUs.
"""
import argparse
import sys

import numpy as np
import torch
from executorch.runtime import Runtime


def run(pte, inputs):
    method = Runtime.get().load_program(pte).load_method("forward")
    shape = method.metadata.input_tensor_meta(0).sizes()
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    return np.concatenate([method.execute([x[i:i + 1].reshape(shape)])[0].numpy() for i in range(len(x))])


def runtime_version():
    try:
        from executorch import version
        return version.__version__
    except ImportError:
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pte")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--save", help="write inputs and this runtime's outputs to this .npz")
    mode.add_argument("--compare", help="compare this runtime's outputs with a --save file")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--windows", type=int, default=32)
    args = parser.parse_args()
    if args.save:
        from osdkit.sim import osdbSim
        probe = Runtime.get().load_program(args.pte).load_method("forward")
        length = max(probe.metadata.input_tensor_meta(0).sizes())
        inputs = osdbSim.example_windows(args.windows, length=length, seed=21)
        np.savez(args.save, inputs=inputs, outputs=run(args.pte, inputs), runtime=runtime_version())
        print(f"{args.pte}: outputs of executorch {runtime_version()} saved to {args.save}")
        return 0
    ref = np.load(args.compare)
    diff = float(np.abs(run(args.pte, ref["inputs"]) - ref["outputs"]).max())
    ok = diff <= args.tolerance
    print(f"{args.pte}: executorch {runtime_version()} vs {ref['runtime']}: max |d logit| {diff:.2e} "
          f"on {len(ref['inputs'])} windows: {'same outputs' if ok else 'DIFFERENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
