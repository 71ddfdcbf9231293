"""Adapters that hand the compiled reward to RL trainers.

===============================  ============================================
``specc.integrations.trl``       ``rbr_reward``: a reward function for TRL's
                                 ``GRPOTrainer`` and ``RLOOTrainer``
``specc.integrations.verl``      ``compute_score`` for verl's
                                 ``custom_reward_function``, and its dataset
``specc.integrations.openrlhf``  ``reward_func`` for OpenRLHF's
                                 ``--reward.remote_url file.py``
===============================  ============================================

Each module imports its trainer library lazily, only where it must, so importing an
adapter (or ``specc``) never loads TRL, verl or OpenRLHF. See ``docs/integrations.md``.
"""
