"""Aesara 2.9.4, Theano's fork between Theano and PyTensor (`aesara`), in a legacy environment of its own.

backend.py: Theano's graphs (theano/family.py) under Aesara's names. No layers or usability probes: `dlbench probe`
and `dlbench usability` say so.
"""

from __future__ import annotations

from dlbench.backends.registry import BackendInfo, Framework, Recipe

FRAMEWORK = Framework(
    name="aesara", label="Aesara", requires=("aesara",),
    install="dlbench envs create aesara (then --env aesara=aesara)",
    backends=(
        BackendInfo("aesara", "dlbench.backends.aesara.backend:AesaraBackend", "Aesara", seed_row="Theano",
                    needs_env=True,
                    description="Aesara 2.9.4, Theano's fork before PyTensor (NumPy < 2, its own env): Theano's "
                                "graphs"),
    ),
    # Its last release needs numpy < 2, scipy ≤ 1.12.
    recipe=Recipe(("aesara==2.9.4", "numpy==1.23.5", "scipy==1.11.4"), {"AESARA_FLAGS": "blas__ldflags="},
                  "Aesara 2.9.4, Theano's fork before PyTensor (needs NumPy < 2)", pythons=("3.10", "3.9")),
    env_vars=("AESARA_FLAGS",),
)  # fmt: skip
