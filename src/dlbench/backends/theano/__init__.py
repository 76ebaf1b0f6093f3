"""Theano 1.0.5, the seed's own framework (`theano`), in a legacy environment of its own (NumPy < 2).

backend.py (Theano's names, flags and scan loop), family.py (the graphs and the backend written once against
Theano's API, shared with the `aesara` backend; its scan LSTM is PyTensor's too). No layers or usability probes:
`dlbench probe` and `dlbench usability` say so.
"""

from __future__ import annotations

from dlbench.backends.registry import BackendInfo, Framework, Recipe

FRAMEWORK = Framework(
    name="theano", label="Theano", requires=("theano",),
    install="dlbench envs create theano (then --env theano=theano)",
    backends=(
        # Label == seed_row: tables call it "Theano 1.0.5", beside "Theano (PyTensor 3.x)".
        BackendInfo("theano", "dlbench.backends.theano.backend:TheanoBackend", "Theano", seed_row="Theano",
                    needs_env=True,
                    description="the seed's Theano 1.0.5 (NumPy < 2, its own env): scan LSTM, nnet.conv2d + pool_2d "
                                "VGG"),
    ),
    # Theano 1.0.5 imports only with NumPy < 2 and a SciPy of its time. blas.ldflags= makes it use NumPy's BLAS
    # through its C code instead of probing for a system BLAS to link against (absent on most machines).
    recipe=Recipe(("theano==1.0.5", "numpy==1.23.5", "scipy==1.11.4"), {"THEANO_FLAGS": "blas.ldflags="},
                  "the seed's Theano 1.0.5 (needs NumPy < 2)", pythons=("3.10", "3.9")),
    env_vars=("THEANO_FLAGS",),
)  # fmt: skip
