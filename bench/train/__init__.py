"""The train stage (``vib-bench train`` and a suite's ``[train]`` table), bottom-up:

* ``options``: what the stage may be told (``TrainSettings``), declared once; imports no torch;
* ``weights``: the weights file of a trained model: save, load, check, rebuild;
* ``member_files``: a training member's files and log lines (status, ``train_log.jsonl``, weights);
* ``snapshots``: activation snapshots taken while training;
* ``recipe``: the training recipe (``TrainConfig``) and the per-model loop (``train_model``), checkpoints;
* ``stacked``: stacked training of many model-seeds of one architecture as one computation;
* ``stage``: the driver: which members train, resume, the clean evaluation, the results.

Importing the package imports none of them (``bench.train.options`` loads without torch).
"""
