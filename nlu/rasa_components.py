"""Custom Rasa NLU components (loaded by the Rasa server from this repo; Python 3.10 with Rasa 3.6 only)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from foundation.personnummer import find_personal_ids
from nlu.intent_probe import IntentProbe, blend
from nlu.sentence_encoder import ENCODERS, MINILM, SentenceEncoder

ENTITY = "personal_id"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class PersonnummerExtractor(GraphComponent, EntityExtractorMixin):
    """Extracts checksum-valid Swedish personal identity / coordination numbers as entity ``personal_id``.

    The entity value is only the kind ("personnummer" / "samordningsnummer"): the number itself is never put
    into an entity or slot, so it cannot end up in the tracker's slots, logs or a handoff packet.
    """

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> PersonnummerExtractor:
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get("text") or ""
            entities = [
                {
                    "entity": ENTITY,
                    "value": found.kind,
                    "start": found.start,
                    "end": found.end,
                    "confidence": 1.0,
                    "extractor": self.__class__.__name__,
                }
                for found in find_personal_ids(text)
            ]
            if entities:
                message.set("entities", message.get("entities", []) + entities, add_to_output=True)
        return messages


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Dense features from a pretrained sentence encoder (``encoder``: nlu/sentence_encoder.py ENCODERS).

    Sparse n-gram features only know the words of the training examples; these let DIET recognise a caller's
    paraphrase ("when does the money land in my account") of what it was trained on ("when will i get paid").
    """

    _encoders: ClassVar[dict[str, SentenceEncoder]] = {}

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DenseFeaturizer.get_default_config(), "encoder": MINILM}

    def __init__(self, config: dict[str, Any], execution_context: ExecutionContext) -> None:
        super().__init__(execution_context.node_name, config)
        self.encoder()  # load the weights with the model, not on a caller's first turn

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEncoderFeaturizer:
        return cls(config, execution_context)

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if config.get("encoder", MINILM) not in ENCODERS:
            raise ValueError(f"SentenceEncoderFeaturizer: encoder must be one of {', '.join(ENCODERS)}")

    def encoder(self) -> SentenceEncoder:
        name = self._config["encoder"]
        if name not in self._encoders:  # the weights load once per process
            self._encoders[name] = SentenceEncoder.named(name)
        return self._encoders[name]

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._featurize(message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def _featurize(self, message: Message) -> None:
        tokens = message.get(TOKENS_NAMES[TEXT])
        text = message.get(TEXT)
        if not tokens or not text:
            return
        sequence, sentence = self.encoder().token_features(text, [(t.start, t.end) for t in tokens])
        alias = self._config["alias"]
        message.add_features(Features(sequence, FEATURE_TYPE_SEQUENCE, TEXT, alias))
        message.add_features(Features(np.expand_dims(sentence, 0), FEATURE_TYPE_SENTENCE, TEXT, alias))


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class BlendedIntentClassifier(GraphComponent, IntentClassifier):
    """Mixes DIET's intent ranking with an encoder probe's (nlu/intent_probe.py): ``(1 - w) * DIET + w * probe``,
    the probe's probabilities sharpened by ``probe_temperature`` (both chosen on the dev sets: bench/classifiers.py),
    with ``probe_neighbours`` of the nearest training examples' vote mixed into the probe (the model then keeps the
    examples' vectors).

    Placed after DIET: reads its ranking and the sentence vector of the featurizer named in ``featurizer``, and
    sets the blended intent and ranking that the FallbackClassifier after it judges. A message without that vector
    (no text) keeps DIET's reading.
    """

    PROBE_FILE = "probe.npz"

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "probe_weight": 0.5,
            "probe_temperature": 1.0,
            "probe_neighbours": 0.0,
            "featurizer": "sentence_encoder",
            "ranking_length": 10,
        }

    def __init__(
        self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource, probe: IntentProbe | None = None
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        if not 0.0 <= float(self.config["probe_weight"]) <= 1.0:
            raise ValueError(f"BlendedIntentClassifier: probe_weight must be 0..1, not {self.config['probe_weight']}")
        if not 0.0 <= float(self.config["probe_neighbours"]) <= 1.0:
            raise ValueError(
                f"BlendedIntentClassifier: probe_neighbours must be 0..1, not {self.config['probe_neighbours']}"
            )
        self._model_storage = model_storage
        self._resource = resource
        self._probe = probe

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> BlendedIntentClassifier:
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlendedIntentClassifier:
        with model_storage.read_from(resource) as directory:
            return cls(config, model_storage, resource, IntentProbe.load(directory / cls.PROBE_FILE))

    @property
    def _neighbours(self) -> float:
        return float(self.config["probe_neighbours"])

    def _vector(self, message: Message) -> np.ndarray | None:
        _, sentence = message.get_dense_features(TEXT, featurizers=[self.config["featurizer"]])
        return None if sentence is None else np.asarray(sentence.features).reshape(-1)

    def train(self, training_data: TrainingData) -> Resource:
        intents, vectors = [], []
        for example in training_data.intent_examples:
            vector = self._vector(example) if example.get("text") else None
            if example.get("intent") and vector is not None:
                intents.append(example.get("intent"))
                vectors.append(vector)
        if not vectors:
            raise ValueError(
                f"BlendedIntentClassifier: no training example has features from {self.config['featurizer']!r}"
            )
        self._probe = IntentProbe.fit(np.stack(vectors), intents)
        with self._model_storage.write_to(self._resource) as directory:
            self._probe.save(directory / self.PROBE_FILE, with_examples=self._neighbours > 0)
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            vector = self._vector(message)
            if self._probe is None or vector is None:
                continue
            diet = {r["name"]: float(r["confidence"]) for r in message.get("intent_ranking") or []}
            row = self._probe.probabilities(vector, float(self.config["probe_temperature"]), self._neighbours)[0]
            probe = dict(zip(self._probe.labels, map(float, row), strict=True))
            ranking = [
                {"name": name, "confidence": confidence}
                for name, confidence in blend(diet, probe, float(self.config["probe_weight"])).items()
            ][: int(self.config["ranking_length"])]
            message.set("intent", ranking[0], add_to_output=True)
            message.set("intent_ranking", ranking, add_to_output=True)
        return messages
