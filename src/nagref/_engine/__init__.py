"""The engine behind every rule, formulation, state map and convention.

Imports go one way, from the IR up:

* :mod:`.ir`: the intermediate representation (pure data);
* :mod:`.trace`: leaf functions written as arithmetic, traced into programs;
* :mod:`.fma`: a correctly rounded fused multiply-add from array-API operations;
* :mod:`.hypers`: hyperparameters cast into constant registers (one channel);
* :mod:`.interpret`: the generic interpreter, which defines the result;
* :mod:`.kernels`: the kernel registry, the one seam for fast paths;
* :mod:`.execute`: the executor, which batches leaves and dispatches them.

Kernels (:mod:`nagref.fastpaths`) import only the IR and the dtype table.
"""
