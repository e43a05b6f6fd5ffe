"""The attack registry over torchattacks."""
