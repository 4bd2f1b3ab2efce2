"""The life of a model after training: ``TrainedModel`` and ``load_run`` (model), what evaluate and predict read
and write (evaluation), pictures of a convolutional net (pictures), text from a character model (sampling), and
ONNX export (export)."""

from chainrule.trained.model import TrainedModel, load_run

__all__ = ["TrainedModel", "load_run"]
