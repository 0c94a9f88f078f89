"""Training: one module per trainer on shared data and loop helpers.

``recnet.py`` (``dsslic train``: CompNet, RecNet/FineNet and the discriminators), ``segnet.py``
(``dsslic train-segnet``: SegNetLite), ``enhance.py`` (``dsslic train-enhance``: the learned enhancement layer);
``data.py``: images and label maps in memory and the deterministic batch of each step; ``loop.py``: checkpoints,
the CSV log, the clock and the flags every trainer shares. Each trainer module registers its subcommand with
``add_parser`` (lazily, from ``cli._LAZY``).
"""
