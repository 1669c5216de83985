"""OpenMP waiting of the training and benchmark commands; import this first, before anything imports torch.

OpenMP threads that wait for work spin by default. Beside one busy process on 2 cores, training with
torch's default 2 threads then fell to 0.28x of its idle speed (619 -> 172 windows/s, batch 256 of 750
samples): each spinning thread steals the core the other program needs, and the threads wait for each
other at every operator. With passive waiting the threads sleep instead of spinning. benchmark.py measures
both policies, idle and beside one busy process. On our shared 2-core machine, with other work running
(load 2-5, so "idle" was never idle), three runs gave passive 116-127 windows/s beside a busy process
(0.52-0.86x of its idle figure) against 48-54 for active waiting, and passive was not slower without the
busy process either (148-226 against 94-112). OpenMP reads the variable when torch loads its runtime,
hence this module's place at the top of the commands; a value the user set is kept.

KERNEL_VARIABLES are the environment variables that choose which CPU code oneDNN (the convolutions)
and MKL (the dense layers) run, read as those libraries load. This module leaves them as the user set
them; the trainer records them in each checkpoint with the CPU and thread count, because the same config
and seed give the same weights only with the same kernels and threads (README, "Reproducing a run
elsewhere": with both capped at AVX2 and the same threads, an AVX-512 Xeon and an emulated Haswell
trained the same weights; with each CPU's own kernels they differ).
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
AVX2_KERNELS = {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}  # the README's recipe; benchmark.py times it
KERNEL_VARIABLES = tuple(AVX2_KERNELS)
