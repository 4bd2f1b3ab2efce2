"""chainrule's application layer: command lines and the tools around training (gradient checks of layers,
losses and whole models from a config).

The framework itself is in the top-level packages ``layers``, ``losses``, ``optim`` and the module ``solver``.
"""
