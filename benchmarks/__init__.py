"""Side-by-side benchmarks against FireWorks 2.1.4: ``python -m benchmarks run [--quick]``."""
