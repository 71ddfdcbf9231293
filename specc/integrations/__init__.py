"""Adapters that hand the compiled reward to RL trainers (TRL, verl, OpenRLHF)."""
