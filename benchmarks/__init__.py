"""Side-by-side benchmarks of rigger_sandbox against its baselines.

Run ``python -m benchmarks`` from the repository root (``--help`` for options,
``--quick`` for a smoke run).  Modules: ``hooks`` (the hook code every
contender runs), ``baselines`` (pipe floor, in-process call, process pool),
``external`` (riggerlib, Ray), ``sandbox`` (the Rigger under test),
``scenarios`` (A to F), ``stats``, ``reporting``, ``plot``, ``runner``.
"""
