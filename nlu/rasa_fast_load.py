"""A Rasa model loads in seconds instead of about a minute on two cores.

Rasa 3.6 builds a loaded DIET or TED model's weights by fitting it one step on an example (``RasaModel.load``), and
compiles that step as a TensorFlow graph, forward and backward pass: ~50 s for DIET and ~15 s for TED here, at every
server start, hot reload and `rasa test`. The step only gives the weights their shapes (the trained weights are read
over them right after), so it is run eagerly here; predictions then run as a compiled graph exactly as before
(``run_eagerly`` set back to the model's setting). Same weights, same predictions; nothing in training changes.

Installed by ``nlu/rasa_cli.py``, our entry for the Rasa commands that load a model (`run`, `test`), before Rasa
loads anything; the pipeline and the model's fingerprint are untouched.
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    import tensorflow as tf
    from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
    from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
    from rasa.utils.tensorflow.models import RasaModel

    def load(
        cls: type[RasaModel],
        model_file_name: str,
        model_data_example: Any,
        predict_data_example: Any = None,
        finetune_mode: bool = False,
        *args: Any,
        **kwargs: Any,
    ) -> RasaModel:
        model = cls(*args, **kwargs)
        config = kwargs.get("config", {})
        model.compile(optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)), run_eagerly=True)
        model.fit(RasaBatchDataGenerator(model_data_example, batch_size=1), verbose=False)  # shapes the weights
        model.load_weights(model_file_name)
        model.run_eagerly = bool(config.get(RUN_EAGERLY))  # predictions: a compiled graph, as Rasa would run them
        if not finetune_mode and predict_data_example:
            model.run_inference(predict_data_example)  # traces the prediction graph now, not on a caller's turn
        return model

    RasaModel.load = classmethod(load)  # type: ignore[assignment, method-assign]
    _installed = True
