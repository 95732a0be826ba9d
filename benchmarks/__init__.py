"""Speed of the stages against this machine's limit and against PyTorch.

Optional: it needs PyTorch (``benchmarks/requirements.txt``), which no stage
uses. Run ``python -m benchmarks.speed``; see ``benchmarks/README.md``.
"""
