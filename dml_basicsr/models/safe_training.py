"""The training behaviour this project's models keep whoever trains them (our ``basicsr train``, BasicSR's
``basicsr/train.py``, a Real-ESRGAN-style script): atomic saves that stop the run on failure, CPU distributed
training, a distributed validation without deadlock. BasicSR's own models are left as they are."""
from dml_basicsr.utils import distributed, training_saves


class SafeTrainingMixin:
    """For ``BaseModel`` subclasses: :mod:`dml_basicsr.utils.training_saves` and :mod:`dml_basicsr.utils.distributed`
    as methods, in place of BasicSR's ``save_network``, ``save_training_state``, ``model_to_device`` and
    ``dist_validation``."""

    save_network = training_saves.save_network
    save_training_state = training_saves.save_training_state
    model_to_device = distributed.model_to_device
    dist_validation = distributed.dist_validation
