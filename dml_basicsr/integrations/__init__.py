"""dml_basicsr's degradation inside other training frameworks.

* :mod:`.mmengine` (``custom_imports = dict(imports=['dml_basicsr.integrations.mmengine'])``): the pipeline
  transform ``DMLDegrade`` and the batch-level ``DMLDataPreprocessor``, registered in this package's mmengine
  registries (scope ``dml_basicsr``, children of mmengine's ``TRANSFORMS``/``MODELS``) and, when MMagic is
  installed, in MMagic's.

Nothing is imported here, so that ``dml_basicsr.integrations`` never needs a framework it does not use.
"""
