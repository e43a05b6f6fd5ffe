"""vib-bench: a benchmark and adversarial-robustness suite for classifier regularizers."""

__version__ = "0.1.0"
