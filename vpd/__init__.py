"""vpd: visual program distillation."""

__version__ = "0.1.0"
